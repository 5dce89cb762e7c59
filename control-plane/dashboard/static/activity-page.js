// @ts-check
import { PAGE_SIZE, api } from './api.js';
import { dataTable, el, emptyState, errorBox, formatTime, main } from './dom.js';

/** @import { Team } from './api.js' */

/** @param {Team} team */
export function renderActivity(team) {
  const entries = dataTable('Activity', ['When', 'Who', 'What', 'Target', '']);
  const more = el('div', { class: 'more' });
  main.replaceChildren(el('h1', {}, `Activity · ${team.name}`), entries.box, more);
  /** @param {string | null} cursor */
  async function load(cursor) {
    more.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    try {
      const page = await api('GET', `/v1/teams/${encodeURIComponent(team.id)}/activity?limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      for (const entry of page.data) {
        const who = entry.actor.type === 'admin' ? 'platform admin' : entry.actor.type === 'team_token' ? `team token ${entry.actor.id}` : 'system';
        const name = typeof entry.details?.name === 'string' ? ` “${entry.details.name}”` : '';
        entries.body.append(
          entries.row(
            { 'data-action': entry.action },
            el('td', {}, formatTime(entry.createdAt)),
            el('td', {}, who, entry.ip ? el('div', { class: 'muted' }, entry.ip) : null),
            el('td', {}, entry.action),
            el('td', { class: 'name' }, `${entry.target.type} ${entry.target.id}${name}`),
            el(
              'td',
              { class: 'actions-cell' },
              entry.action === 'key.revoked' || entry.action === 'key.rotated'
                ? el('a', { href: `#/revocation/${entry.target.id}` }, 'Propagation status')
                : '',
            ),
          ),
        );
      }
      more.replaceChildren(page.nextCursor ? el('button', { type: 'button', class: 'secondary', onclick: () => load(page.nextCursor) }, 'Load more') : '');
      if (cursor === null && page.data.length === 0) more.replaceChildren(
          emptyState('No activity yet', 'Every change to this team (keys created, changed, rotated or revoked, tokens issued) is recorded here.', el('a', { href: '#/keys' }, 'Go to keys to create your first key')),
        );
    } catch (error) {
      more.replaceChildren(errorBox(error));
    }
  }
  void load(null);
}
