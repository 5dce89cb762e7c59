// @ts-check
/** "Test a proxy username": what a node would do with a key and a username, from the explain API. */
import { api } from './api.js';
import { el, errorBox, openDialog } from './dom.js';

/** @import { Key, Team } from './api.js' */

/**
 * @param {Team} team
 * @param {Pick<Key, 'id' | 'name'>} key
 */
export function openExplain(team, key) {
  const username = /** @type {HTMLInputElement} */ (
    el('input', { id: 'explain-username', type: 'text', placeholder: 'acme-country-de-session-s1', autocomplete: 'off', spellcheck: 'false' })
  );
  const destination = /** @type {HTMLInputElement} */ (
    el('input', { id: 'explain-destination', type: 'text', placeholder: 'https://example.com', autocomplete: 'off', spellcheck: 'false' })
  );
  const result = el('div', { id: 'explain-result', 'aria-live': 'polite' });
  const form = el(
    'form',
    { class: 'stack', id: 'explain' },
    el('h2', {}, `Test a proxy username for “${key.name}”`),
    el('label', { for: 'explain-username' }, 'Proxy username', username),
    el('label', { for: 'explain-destination' }, 'Destination (optional)', destination),
    result,
    el(
      'div',
      { class: 'actions' },
      el('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Close'),
      el('button', { type: 'submit' }, 'Test'),
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    result.replaceChildren(el('p', { class: 'muted' }, 'Asking…'));
    /** @type {Record<string, string>} */
    const body = { keyId: key.id };
    if (username.value.trim() !== '') body.username = username.value.trim();
    if (destination.value.trim() !== '') body.destination = destination.value.trim();
    try {
      result.replaceChildren(...describeAnswer(await api('POST', `/v1/teams/${encodeURIComponent(team.id)}/explain`, body)));
    } catch (error) {
      result.replaceChildren(errorBox(error));
    }
  });
  const dialog = openDialog(form);
  username.focus();
}

/** @param {any} answer */
function describeAnswer(answer) {
  const verdict =
    answer.outcome === 'allowed'
      ? el('p', { class: 'done', id: 'explain-verdict' }, 'A node would send this request out.')
      : el('p', { class: 'error', id: 'explain-verdict' }, `A node would refuse it: ${answer.refusal.status} `, el('code', {}, answer.refusal.code), ` — ${answer.refusal.hint}`);
  const credential = answer.credential;
  const targeting = credential === null ? [] : ['country', 'city', 'state', 'asn', 'pool', 'session', 'sessionMinutes'].filter((part) => credential[part] !== null).map((part) => `${part} ${credential[part]}`);
  return [
    verdict,
    el(
      'ul',
      {},
      credential === null ? null : el('li', {}, `Targeting: ${targeting.length === 0 ? 'none' : targeting.join(', ')}`),
      answer.exits === null ? null : el('li', {}, `Matching exits: ${answer.exits.matching}${answer.exits.countries.length > 0 ? ` (${answer.exits.countries.join(', ')})` : ''}`),
      answer.limits === null ? null : el('li', {}, answer.limits.overQuota ? 'Monthly quota: used up' : 'Monthly quota: not used up'),
    ),
  ];
}
