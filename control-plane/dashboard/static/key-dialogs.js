// @ts-check
/** The dialogs that change a team's keys: creating one (and showing its secret once) and revoking one. */
import { api } from './api.js';
import { el, errorBox, openDialog } from './dom.js';
import { openPropagation } from './propagation-dialog.js';

/** @import { Key, Team } from './api.js' */

/** @param {Team} team @param {() => void} onCreated */
export async function openCreateKey(team, onCreated) {
  const name = /** @type {HTMLInputElement} */ (el('input', { id: 'key-name', name: 'name', required: true, maxlength: '200', autocomplete: 'off' }));
  const countries = /** @type {HTMLInputElement} */ (el('input', { id: 'key-countries', name: 'countries', placeholder: 'DE, US (empty: all countries)', autocomplete: 'off' }));
  const expires = /** @type {HTMLInputElement} */ (el('input', { id: 'key-expires', name: 'expires', type: 'datetime-local' }));
  const poolChecks = el('div', { class: 'checks' }, el('span', { class: 'muted' }, 'Loading pools…'));
  const problem = el('div', { 'aria-live': 'polite' });
  const submit = /** @type {HTMLButtonElement} */ (el('button', { type: 'submit' }, 'Create key'));
  const form = el(
    'form',
    { method: 'dialog' },
    el('h2', {}, 'Create new key'),
    el('label', { for: 'key-name' }, 'Name', name),
    el('fieldset', {}, el('legend', {}, 'Pools (none checked: all pools)'), poolChecks),
    el('label', { for: 'key-countries' }, 'Countries, as ISO codes', countries),
    el('label', { for: 'key-expires' }, 'Expires (optional)', expires),
    problem,
    el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'), submit),
  );
  const dialog = openDialog(form);
  name.focus();
  api('GET', '/v1/pools?limit=500').then(
    (page) => {
      poolChecks.replaceChildren(
        ...page.data.map((/** @type {{ name: string }} */ pool) => el('label', {}, el('input', { type: 'checkbox', name: 'pool', value: pool.name }), pool.name)),
      );
      if (page.data.length === 0) poolChecks.replaceChildren(el('span', { class: 'muted' }, 'No pools defined.'));
    },
    (error) => poolChecks.replaceChildren(errorBox(error)),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    /** @type {Record<string, unknown>} */
    const body = { name: name.value };
    const pools = [...form.querySelectorAll('input[name="pool"]:checked')].map((input) => /** @type {HTMLInputElement} */ (input).value);
    if (pools.length > 0) body.pools = pools;
    const codes = countries.value.split(/[\s,]+/).filter(Boolean);
    if (codes.length > 0) body.countries = codes;
    if (expires.value !== '') body.expiresAt = new Date(expires.value).toISOString();
    submit.disabled = true;
    try {
      const created = await api('POST', `/v1/teams/${encodeURIComponent(team.id)}/keys`, body);
      showSecret(dialog, created);
      onCreated();
    } catch (error) {
      problem.replaceChildren(errorBox(error));
      submit.disabled = false;
    }
  });
}

/** @param {HTMLDialogElement} dialog @param {Key & { key: string }} created */
function showSecret(dialog, created) {
  const secret = el('code', { class: 'secret', id: 'new-secret' }, created.key);
  const copied = el('span', { class: 'muted', 'aria-live': 'polite' });
  const done = el('button', { type: 'button', onclick: () => dialog.close() }, 'Done');
  dialog.replaceChildren(
    el(
      'div',
      { class: 'stack' },
      el('h2', {}, `Key “${created.name}” created`),
      el('p', { class: 'warning' }, 'Copy this key now. It will not be shown again.'),
      secret,
      el(
        'div',
        { class: 'actions' },
        copied,
        el(
          'button',
          {
            type: 'button',
            class: 'secondary',
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(created.key);
                copied.textContent = 'Copied.';
              } catch {
                const range = document.createRange();
                range.selectNodeContents(secret);
                getSelection()?.removeAllRanges();
                getSelection()?.addRange(range);
                copied.textContent = 'Selected: press Ctrl+C to copy.';
              }
            },
          },
          'Copy',
        ),
        done,
      ),
    ),
  );
  done.focus();
}

/** @param {Team} team @param {Key} key @param {() => void} onRevoked */
export function confirmRevoke(team, key, onRevoked) {
  const problem = el('div', { 'aria-live': 'polite' });
  const confirm = /** @type {HTMLButtonElement} */ (
    el(
      'button',
      {
        type: 'button',
        class: 'danger',
        onclick: async () => {
          confirm.disabled = true;
          try {
            await api('POST', `/v1/teams/${encodeURIComponent(team.id)}/keys/${encodeURIComponent(key.id)}/revoke`);
            dialog.close();
            onRevoked();
            openPropagation(team, key);
          } catch (error) {
            problem.replaceChildren(errorBox(error));
            confirm.disabled = false;
          }
        },
      },
      'Revoke key',
    )
  );
  const cancel = el('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel');
  const dialog = openDialog(
    el(
      'div',
      { class: 'stack' },
      el('h2', {}, `Revoke “${key.name}”?`),
      el('p', {}, 'Every client using this key will be refused within a second, in every region, and its open connections will be closed. This cannot be undone.'),
      problem,
      el('div', { class: 'actions' }, cancel, confirm),
    ),
  );
  cancel.focus();
}
