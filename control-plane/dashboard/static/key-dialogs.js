// @ts-check
/** The dialogs that change a team's keys: create, edit grants and limits, rotate and revoke. */
import { api } from './api.js';
import { confirmDialog } from './confirm-dialog.js';
import { el, errorBox, openDialog } from './dom.js';
import { keyFields } from './key-fields.js';
import { openPropagation } from './propagation-dialog.js';
import { showSecret } from './secret-panel.js';

/** @import { Key, Team } from './api.js' */

/**
 * A form dialog that sends `submit` and shows its error in place, keeping what was typed: next to
 * the field it is about when `placeError` places it there, else above the buttons.
 * @param {string} title
 * @param {string} action the submit button's text
 * @param {HTMLElement[]} fields
 * @param {(dialog: HTMLDialogElement) => Promise<void>} submit
 * @param {(error: unknown) => boolean} placeError clears any error it placed before, then places this one if it can
 */
function formDialog(title, action, fields, submit, placeError) {
  const problem = el('div', { 'aria-live': 'polite' });
  const button = /** @type {HTMLButtonElement} */ (el('button', { type: 'submit' }, action));
  const form = el(
    'form',
    { method: 'dialog' },
    el('h2', {}, title),
    ...fields,
    problem,
    el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'), button),
  );
  const dialog = openDialog(form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    placeError(null);
    button.disabled = true;
    try {
      await submit(dialog);
    } catch (error) {
      if (!placeError(error)) problem.replaceChildren(errorBox(error));
      button.disabled = false;
    }
  });
  return dialog;
}

/** @param {Team} team @param {string | null} proxyUrl @param {() => void} onCreated */
export function openCreateKey(team, proxyUrl, onCreated) {
  const name = /** @type {HTMLInputElement} */ (el('input', { id: 'key-name', name: 'name', required: true, maxlength: '200', autocomplete: 'off' }));
  const fields = keyFields(null);
  formDialog('Create new key', 'Create key', [el('label', { for: 'key-name' }, 'Name', name), ...fields.elements], async (dialog) => {
    const created = await api('POST', `/v1/teams/${encodeURIComponent(team.id)}/keys`, { name: name.value, ...fields.read() });
    showSecret(dialog, { title: `Key “${created.name}” created`, secret: created.key, what: 'key', proxyUrl });
    onCreated();
  }, fields.placeError);
  name.focus();
}

/** @param {Team} team @param {Key} key @param {(key: Key) => void} onSaved */
export function openEditKey(team, key, onSaved) {
  const name = /** @type {HTMLInputElement} */ (el('input', { id: 'key-name', name: 'name', required: true, maxlength: '200', autocomplete: 'off' }));
  name.value = key.name;
  const fields = keyFields(key);
  formDialog(`Edit “${key.name}”`, 'Save changes', [el('label', { for: 'key-name' }, 'Name', name), ...fields.elements], async (dialog) => {
    const body = fields.read();
    if (name.value !== key.name) body.name = name.value;
    const saved = await api('PATCH', `/v1/teams/${encodeURIComponent(team.id)}/keys/${encodeURIComponent(key.id)}`, body);
    dialog.close();
    onSaved(saved);
  }, fields.placeError);
  name.focus();
}

/** @param {Team} team @param {Key} key @param {string | null} proxyUrl */
export function confirmRotate(team, key, proxyUrl) {
  confirmDialog(
    `Rotate “${key.name}”?`,
    'The key gets a new secret, shown once. The current secret stops working everywhere within a second, so update your clients right after.',
    'Rotate key',
    async (dialog) => {
      const rotated = await api('POST', `/v1/teams/${encodeURIComponent(team.id)}/keys/${encodeURIComponent(key.id)}/rotate`);
      showSecret(dialog, { title: `Key “${rotated.name}” rotated`, secret: rotated.key, what: 'key', proxyUrl });
    },
  );
}

/** @param {Team} team @param {Key} key @param {() => void} onRevoked */
export function confirmRevoke(team, key, onRevoked) {
  confirmDialog(
    `Revoke “${key.name}”?`,
    'Every client using this key will be refused within a second, in every region, and its open connections will be closed. This cannot be undone.',
    'Revoke key',
    async (dialog) => {
      await api('POST', `/v1/teams/${encodeURIComponent(team.id)}/keys/${encodeURIComponent(key.id)}/revoke`);
      dialog.close();
      onRevoked();
      openPropagation(team, key);
    },
  );
}
