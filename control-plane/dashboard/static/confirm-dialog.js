// @ts-check
/** The confirmation asked before what cannot be undone: revoking or rotating a key, revoking a token. */
import { el, errorBox, openDialog } from './dom.js';

/**
 * A dialog that asks before doing something that cannot be undone.
 * @param {string} title
 * @param {string} text
 * @param {string} action the confirming button's text
 * @param {(dialog: HTMLDialogElement) => Promise<void>} confirmed
 * @param {string} [warning] said apart, below the text
 */
export function confirmDialog(title, text, action, confirmed, warning) {
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
            await confirmed(dialog);
          } catch (error) {
            problem.replaceChildren(errorBox(error));
            confirm.disabled = false;
          }
        },
      },
      action,
    )
  );
  const cancel = el('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel');
  const dialog = openDialog(el('div', { class: 'stack' }, el('h2', {}, title), el('p', {}, text), warning === undefined ? null : el('p', { class: 'warning' }, warning), problem, el('div', { class: 'actions' }, cancel, confirm)));
  cancel.focus();
}
