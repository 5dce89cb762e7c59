// @ts-check
/**
 * Traffic over time as a uPlot chart: bytes down and up on the left axis, requests on the
 * right, time along the bottom, and a legend that reads out the values under the cursor.
 */
import uPlot from './uplot.js';
import { el, formatBytes } from './dom.js';

const HEIGHT = 260;

/** Tick steps for counts: whole numbers only, so that the axis never shows "1, 1, 2". */
const WHOLE_STEPS = [1, 2, 5].flatMap((step) => [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000].map((power) => step * power)).sort((a, b) => a - b);

/** @param {number} count */
function formatCount(count) {
  return count.toLocaleString(undefined, { maximumFractionDigits: 0 });
}

/**
 * @param {{ start: string, bytesUp: number, bytesDown: number, requests: number }[]} points one per period, gaps filled
 * @param {'hour' | 'day'} granularity
 * @returns {HTMLElement} the chart, which sizes itself to its box
 */
export function usageChart(points, granularity) {
  const box = el('div', { class: 'chart', role: 'img', 'aria-label': 'Traffic per period: downloaded and uploaded bytes, and requests' });
  /** @type {uPlot.AlignedData} */
  const data = [
    points.map((point) => Date.parse(point.start) / 1000),
    points.map((point) => point.bytesDown),
    points.map((point) => point.bytesUp),
    points.map((point) => point.requests),
  ];
  const bytesValue = (/** @type {uPlot} */ _u, /** @type {number | null} */ value) => (value === null ? '—' : formatBytes(value));
  const countValue = (/** @type {uPlot} */ _u, /** @type {number | null} */ value) => (value === null ? '—' : formatCount(value));
  const when = new Intl.DateTimeFormat(undefined, granularity === 'hour' ? { dateStyle: 'medium', timeStyle: 'short' } : { dateStyle: 'medium' });
  /** @param {number} width */
  const options = (width) => ({
    width,
    height: HEIGHT,
    scales: { x: { time: true }, bytes: { range: (/** @type {uPlot} */ _u, /** @type {number} */ _min, /** @type {number} */ max) => /** @type {[number, number]} */ ([0, Math.max(max, 1)]) }, count: { range: (/** @type {uPlot} */ _u, /** @type {number} */ _min, /** @type {number} */ max) => /** @type {[number, number]} */ ([0, Math.max(max, 1)]) } },
    series: [
      { label: granularity === 'hour' ? 'Hour' : 'Day', value: (/** @type {uPlot} */ _u, /** @type {number | null} */ seconds) => (seconds === null ? '—' : when.format(seconds * 1000)) },
      { label: 'Downloaded', scale: 'bytes', stroke: '#1f5fd1', fill: 'rgba(31, 95, 209, 0.12)', width: 2, value: bytesValue },
      { label: 'Uploaded', scale: 'bytes', stroke: '#8fb0ea', width: 2, value: bytesValue },
      { label: 'Requests', scale: 'count', stroke: '#137333', width: 1.5, dash: [4, 4], value: countValue },
    ],
    axes: [
      { stroke: '#5b6576', grid: { stroke: '#eceff4' } },
      { scale: 'bytes', label: 'Bytes', stroke: '#5b6576', grid: { stroke: '#eceff4' }, size: 70, values: (/** @type {uPlot} */ _u, /** @type {number[]} */ ticks) => ticks.map((tick) => formatBytes(tick)) },
      { scale: 'count', label: 'Requests', side: 1, stroke: '#5b6576', grid: { show: false }, size: 60, incrs: WHOLE_STEPS, values: (/** @type {uPlot} */ _u, /** @type {number[]} */ ticks) => ticks.map(formatCount) },
    ],
  });
  /** @type {uPlot | null} */
  let chart = null;
  // uPlot draws at a fixed size: follow the box, and stop once the page has replaced it.
  const resized = new ResizeObserver(() => {
    if (!box.isConnected) {
      resized.disconnect();
      chart?.destroy();
      return;
    }
    const width = Math.floor(box.clientWidth);
    if (width === 0) return;
    if (chart === null) chart = new uPlot(options(width), data, box);
    else chart.setSize({ width, height: HEIGHT });
  });
  resized.observe(box);
  return box;
}
