// The types of /assets/uplot.js, which the control plane serves from the installed uplot package.
import uPlot from 'uplot';

export default uPlot;
