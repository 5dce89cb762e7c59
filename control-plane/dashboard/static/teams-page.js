// @ts-check
/** The platform admin's teams: list them, create one, and switch to one without signing out. */
import { PAGE_SIZE, api } from './api.js';
import { dataTable, el, emptyState, errorBox, formatTime, main, notify } from './dom.js';

/** @import { Team } from './api.js' */

/**
 * @param {Team | null} current the team the dashboard shows now
 * @param {(team: Team) => void} choose switches the dashboard to a team
 */
export function renderTeams(current, choose) {
  const teams = dataTable('Teams', ['Name', 'ID', 'Created', '']);
  const more = el('div', { class: 'more' });
  const name = /** @type {HTMLInputElement} */ (el('input', { id: 'team-name', name: 'name', required: true, maxlength: '200', autocomplete: 'off' }));
  const problem = el('div', { 'aria-live': 'polite' });
  const form = el(
    'form',
    {
      class: 'toolbar',
      onsubmit: async (event) => {
        event.preventDefault();
        problem.replaceChildren();
        try {
          const team = await api('POST', '/v1/teams', { name: name.value });
          name.value = '';
          more.querySelector('.empty')?.remove();
          teams.body.prepend(teamRow(team));
          notify(`Team “${team.name}” created.`);
        } catch (error) {
          problem.replaceChildren(errorBox(error));
        }
      },
    },
    el('label', { for: 'team-name' }, 'New team name', name),
    el('button', { type: 'submit' }, 'Create team'),
  );
  main.replaceChildren(
    el('h1', {}, current === null ? 'Choose a team' : 'Teams'),
    el('p', { class: 'muted' }, 'Each team has its own keys, tokens, usage and activity. Choose one to work in it; you stay signed in.'),
    form,
    problem,
    teams.box,
    more,
  );

  /** @param {Team} team */
  function teamRow(team) {
    const isCurrent = current?.id === team.id;
    return teams.row(
      { 'data-team-id': team.id },
      el('td', { class: 'name' }, el('button', { type: 'button', class: 'link', onclick: () => choose(team) }, team.name)),
      el('td', {}, el('code', {}, team.id)),
      el('td', {}, formatTime(team.createdAt)),
      el(
        'td',
        { class: 'actions-cell' },
        isCurrent ? el('span', { class: 'muted' }, 'Current team') : el('button', { type: 'button', class: 'secondary', 'aria-label': `Switch to ${team.name}`, onclick: () => choose(team) }, 'Switch to'),
      ),
    );
  }

  /** @param {string | null} cursor */
  async function load(cursor) {
    more.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    try {
      const page = await api('GET', `/v1/teams?limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      teams.body.append(...page.data.map(teamRow));
      more.replaceChildren(page.nextCursor ? el('button', { type: 'button', class: 'secondary', onclick: () => load(page.nextCursor) }, 'Load more teams') : '');
      if (cursor === null && page.data.length === 0) more.replaceChildren(emptyState('No teams yet', 'Create your first team above: it gets its own keys, tokens and usage.'));
    } catch (error) {
      more.replaceChildren(errorBox(error));
    }
  }
  void load(null);
}
