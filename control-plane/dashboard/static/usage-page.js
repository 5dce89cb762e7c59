// @ts-check
import { api } from './api.js';
import { dataTable, el, emptyState, errorBox, formatBytes, formatTime, main } from './dom.js';

/** @import { Team } from './api.js' */

/** @typedef {{ start: string, bytesUp: number, bytesDown: number, requests: number, tunnels: number }} UsagePoint */

/**
 * Every period of the range, with zero where there was no traffic, so that the chart's
 * lines drop to zero instead of joining the periods on either side of a gap.
 * @param {UsagePoint[]} points
 * @param {string} from
 * @param {string} to
 * @param {number} bucketMs
 */
function fillGaps(points, from, to, bucketMs) {
  const byStart = new Map(points.map((point) => [new Date(point.start).getTime(), point]));
  /** @type {UsagePoint[]} */
  const filled = [];
  for (let start = Math.floor(Date.parse(from) / bucketMs) * bucketMs; start < Date.parse(to); start += bucketMs) {
    filled.push(byStart.get(start) ?? { start: new Date(start).toISOString(), bytesUp: 0, bytesDown: 0, requests: 0, tunnels: 0 });
  }
  return filled;
}

/** @param {Team} team @param {string} [keyId] */
export function renderUsage(team, keyId) {
  const range = /** @type {HTMLSelectElement} */ (
    el('select', { id: 'usage-range' }, el('option', { value: 'hour' }, 'Last 24 hours, by hour'), el('option', { value: 'day' }, 'Last 30 days, by day'))
  );
  const title = el('h1', {}, keyId === undefined ? `Usage · ${team.name}` : 'Usage of a key');
  const summary = el('p', { id: 'usage-summary', 'aria-live': 'polite' }, 'Loading…');
  const chart = el('div', { class: 'chart-box' });
  const periods = dataTable('Usage', ['Period starting', 'Downloaded', 'Uploaded', 'Requests', 'Tunnels']);
  main.replaceChildren(
    title,
    el('div', { class: 'toolbar' }, el('label', { for: 'usage-range' }, 'Period', range), keyId === undefined ? '' : el('a', { href: '#/usage' }, 'Whole team')),
    summary,
    chart,
    periods.box,
  );
  const base = `/v1/teams/${encodeURIComponent(team.id)}${keyId === undefined ? '' : `/keys/${encodeURIComponent(keyId)}`}`;
  if (keyId !== undefined) {
    api('GET', `/v1/teams/${encodeURIComponent(team.id)}/keys/${encodeURIComponent(keyId)}`).then(
      (key) => (title.textContent = `Usage · ${key.name}`),
      (error) => summary.replaceChildren(errorBox(error)),
    );
  }
  async function load() {
    const granularity = range.value;
    const from = new Date(Date.now() - (granularity === 'hour' ? 24 : 30 * 24) * 3_600_000).toISOString();
    summary.textContent = 'Loading…';
    try {
      const usage = await api('GET', `${base}/usage?granularity=${granularity}&from=${encodeURIComponent(from)}`);
      /** @type {UsagePoint[]} */
      const points = usage.data;
      const chartPoints = fillGaps(points, usage.from, usage.to, granularity === 'hour' ? 3_600_000 : 86_400_000);
      const total = points.reduce((sum, point) => ({ down: sum.down + point.bytesDown, up: sum.up + point.bytesUp, requests: sum.requests + point.requests, tunnels: sum.tunnels + point.tunnels }), {
        down: 0,
        up: 0,
        requests: 0,
        tunnels: 0,
      });
      const plural = (/** @type {number} */ count, /** @type {string} */ word) => `${count.toLocaleString()} ${word}${count === 1 ? '' : 's'}`;
      summary.textContent = `${formatBytes(total.down)} downloaded, ${formatBytes(total.up)} uploaded, ${plural(total.requests, 'request')}, ${plural(total.tunnels, 'tunnel')}.`;
      if (points.length === 0) {
        chart.replaceChildren(emptyState('No traffic in this period', 'Send a request through the proxy with one of your keys; it shows here within a few seconds.', el('a', { href: '#/keys' }, 'See your keys')));
      } else {
        // uPlot is most of the dashboard's bytes: loaded when a chart is first drawn, not at sign-in.
        const { usageChart } = await import('./usage-chart.js');
        chart.replaceChildren(usageChart(chartPoints, granularity === 'hour' ? 'hour' : 'day'));
      }
      periods.body.replaceChildren(
        ...points.map((point) =>
          periods.row({}, el('td', {}, formatTime(point.start)), el('td', {}, formatBytes(point.bytesDown)), el('td', {}, formatBytes(point.bytesUp)), el('td', {}, point.requests.toLocaleString()), el('td', {}, point.tunnels.toLocaleString())),
        ),
      );
    } catch (error) {
      summary.replaceChildren(errorBox(error));
    }
  }
  range.addEventListener('change', () => void load());
  void load();
}
