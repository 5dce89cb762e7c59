// @ts-check
/** A secret shown once (a new or rotated key, a new token), with a copy button and, for keys, client snippets. */
import { el } from './dom.js';
import { proxySnippets, snippetNote } from './proxy-snippets.js';

/**
 * A button that copies `text`, or selects `target` for Ctrl+C where the clipboard is refused.
 * @param {string} text
 * @param {HTMLElement} target
 * @param {string} label
 */
export function copyButton(text, target, label) {
  const said = el('span', { class: 'muted', 'aria-live': 'polite' });
  const button = el(
    'button',
    {
      type: 'button',
      class: 'secondary',
      'aria-label': label,
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(text);
          said.textContent = 'Copied.';
        } catch {
          const range = document.createRange();
          range.selectNodeContents(target);
          getSelection()?.removeAllRanges();
          getSelection()?.addRange(range);
          said.textContent = 'Selected: press Ctrl+C to copy.';
        }
      },
    },
    'Copy',
  );
  return el('span', { class: 'copy' }, said, button);
}

/**
 * Replaces the dialog's content with the secret, shown this once.
 * @param {HTMLDialogElement} dialog
 * @param {{ title: string, secret: string, what: string, proxyUrl?: string | null }} shown `proxyUrl` (a key): add client snippets
 */
export function showSecret(dialog, { title, secret, what, proxyUrl }) {
  const code = el('code', { class: 'secret', id: 'new-secret' }, secret);
  const done = el('button', { type: 'button', onclick: () => dialog.close() }, 'Done');
  const snippets =
    proxyUrl === undefined
      ? []
      : [
          el('h3', {}, 'Use it'),
          el('p', { class: 'muted' }, snippetNote(proxyUrl)),
          ...proxySnippets(proxyUrl, secret).map(({ label, code: text }) => {
            const block = el('pre', { class: 'snippet' }, el('code', {}, text));
            return el('section', { class: 'snippet-box', 'aria-label': label }, el('div', { class: 'snippet-head' }, el('strong', {}, label), copyButton(text, block, `Copy ${label}`)), block);
          }),
        ];
  dialog.replaceChildren(
    el(
      'div',
      { class: 'stack' },
      el('h2', {}, title),
      el('p', { class: 'warning' }, `Copy this ${what} now. It will not be shown again.`),
      code,
      el('div', { class: 'actions' }, copyButton(secret, code, `Copy the ${what}`)),
      ...snippets,
      el('div', { class: 'actions' }, done),
    ),
  );
  // Focus on Done without scrolling the secret, at the top, out of view.
  done.focus({ preventScroll: true });
}
