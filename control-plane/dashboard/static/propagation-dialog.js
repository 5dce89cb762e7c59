// @ts-check
import { api } from './api.js';
import { el, errorBox, openDialog } from './dom.js';

/** @import { Key, Team } from './api.js' */

const PROPAGATION_POLL_MS = 250;
const PROPAGATION_GIVE_UP_MS = 60_000;

/**
 * A live view of a revocation reaching every region and node, polled until complete.
 * @param {Team} team
 * @param {Pick<Key, 'id' | 'name'>} key
 */
export function openPropagation(team, key) {
  const summary = el('p', { id: 'propagation-summary', 'aria-live': 'polite' }, 'Waiting for the first node reports…');
  const regions = el('div', { class: 'stack' });
  let stopped = false;
  const dialog = openDialog(
    el(
      'div',
      { class: 'stack', id: 'propagation' },
      el('h2', {}, `Revocation of “${key.name}”`),
      summary,
      regions,
      el('div', { class: 'actions' }, el('button', { type: 'button', onclick: () => dialog.close() }, 'Close')),
    ),
  );
  dialog.addEventListener('close', () => {
    stopped = true;
  });
  const started = Date.now();
  async function poll() {
    if (stopped) return;
    try {
      const status = await api('GET', `/v1/teams/${encodeURIComponent(team.id)}/keys/${encodeURIComponent(key.id)}/revocation`);
      regions.replaceChildren(
        ...status.regions.map((/** @type {any} */ region) =>
          el(
            'section',
            { class: 'region' },
            el('h3', {}, `${region.region}: ${region.applied} of ${region.total} nodes`),
            el(
              'ul',
              {},
              ...region.nodes.map((/** @type {any} */ node) =>
                el(
                  'li',
                  { class: node.applied ? 'applied' : 'pending' },
                  `${node.nodeId}: `,
                  node.applied
                    ? node.afterMs === null
                      ? 'applied (started after the revocation)'
                      : `applied after ${node.afterMs} ms${node.closedConnections > 0 ? `, closed ${node.closedConnections} connection${node.closedConnections === 1 ? '' : 's'}` : ''}`
                    : 'waiting…',
                ),
              ),
            ),
            region.total === 0 ? el('p', { class: 'muted' }, region.published ? 'No live node in this region.' : 'Not yet published to this region.') : null,
          ),
        ),
      );
      if (status.complete) {
        summary.className = 'done';
        summary.textContent = `Revoked everywhere: ${status.liveNodes} node${status.liveNodes === 1 ? '' : 's'}, slowest after ${status.slowestMs ?? 0} ms.`;
        return;
      }
      summary.textContent =
        status.liveNodes === 0 ? 'No proxy node is reporting right now.' : `Applied on ${status.liveNodes - status.pendingNodes} of ${status.liveNodes} nodes…`;
    } catch (error) {
      summary.replaceChildren(errorBox(error));
    }
    if (Date.now() - started < PROPAGATION_GIVE_UP_MS) setTimeout(poll, PROPAGATION_POLL_MS);
    else summary.append(' Still not complete: a node may be unreachable.');
  }
  void poll();
}
