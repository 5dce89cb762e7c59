// @ts-check
/** The dialogs that change a team's tokens: creating one (its secret shown once) and revoking one. */
import { api } from './api.js';
import { confirmDialog } from './confirm-dialog.js';
import { el, errorBox, openDialog } from './dom.js';
import { showSecret } from './secret-panel.js';

/** @import { Team, Token } from './api.js' */

/** What each scope allows, as the README's table says it. */
export const SCOPE_TEXT = /** @type {Record<string, string>} */ ({
  'keys:read': 'list, read and export keys',
  'keys:write': 'create, change, rotate and revoke keys',
  'usage:read': 'read and export usage',
  'activity:read': 'read the activity log',
  'tokens:write': 'list, create and revoke tokens',
});

/**
 * @param {Team} team
 * @param {string[]} scopes the scopes the signed-in token has: a new token may have only these
 * @param {() => void} onCreated
 */
export function openCreateToken(team, scopes, onCreated) {
  const name = /** @type {HTMLInputElement} */ (el('input', { id: 'token-name', name: 'name', required: true, maxlength: '200', autocomplete: 'off' }));
  const expires = /** @type {HTMLInputElement} */ (el('input', { id: 'token-expires', name: 'expires', type: 'datetime-local' }));
  const checks = scopes.map((scope) =>
    el('label', {}, el('input', { type: 'checkbox', name: 'scope', value: scope, checked: true }), el('span', {}, el('code', {}, scope), ` ${SCOPE_TEXT[scope] ?? ''}`)),
  );
  const problem = el('div', { 'aria-live': 'polite' });
  const submit = /** @type {HTMLButtonElement} */ (el('button', { type: 'submit' }, 'Create token'));
  const form = el(
    'form',
    { method: 'dialog' },
    el('h2', {}, 'Create team token'),
    el('p', { class: 'muted' }, 'A token is for a script or a person using the API and this dashboard. It can do only what its scopes allow.'),
    el('label', { for: 'token-name' }, 'Name', name),
    el('fieldset', {}, el('legend', {}, 'Scopes'), el('div', { class: 'scopes' }, ...checks)),
    el('label', { for: 'token-expires' }, 'Expires (optional)', expires),
    problem,
    el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'), submit),
  );
  const dialog = openDialog(form);
  name.focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    const chosen = [...form.querySelectorAll('input[name="scope"]:checked')].map((input) => /** @type {HTMLInputElement} */ (input).value);
    if (chosen.length === 0) {
      problem.replaceChildren(errorBox(new Error('Choose at least one scope.')));
      return;
    }
    /** @type {Record<string, unknown>} */
    const body = { name: name.value, scopes: chosen };
    if (expires.value !== '') body.expiresAt = new Date(expires.value).toISOString();
    submit.disabled = true;
    try {
      const created = await api('POST', `/v1/teams/${encodeURIComponent(team.id)}/tokens`, body);
      showSecret(dialog, { title: `Token “${created.name}” created`, secret: created.token, what: 'token' });
      onCreated();
    } catch (error) {
      problem.replaceChildren(errorBox(error));
      submit.disabled = false;
    }
  });
}

/**
 * @param {Team} team
 * @param {Token} token
 * @param {boolean} own whether it is the token this dashboard is signed in with
 * @param {(revoked: Token) => void} onRevoked
 */
export function confirmRevokeToken(team, token, own, onRevoked) {
  confirmDialog(
    `Revoke “${token.name}”?`,
    'Every call made with this token is refused from now on. This cannot be undone.',
    'Revoke token',
    async (dialog) => {
      const revoked = await api('POST', `/v1/teams/${encodeURIComponent(team.id)}/tokens/${encodeURIComponent(token.id)}/revoke`);
      dialog.close();
      onRevoked(revoked);
    },
    own ? 'This is the token you are signed in with: you will be signed out.' : undefined,
  );
}
