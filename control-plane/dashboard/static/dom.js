// @ts-check
/** The element builders and the page furniture that every view shares. */
import { describe } from './api.js';

export const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const toast = /** @type {HTMLElement} */ (document.getElementById('toast'));

/**
 * Builds an element. Strings among the children become text nodes, so user data can
 * never turn into markup.
 * @param {string} tag
 * @param {Record<string, string | boolean | ((event: Event) => void)>} [attributes]
 * @param {(Node | string | null | undefined | false)[]} children
 * @returns {HTMLElement}
 */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(name, '');
    else if (value !== false) element.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return element;
}

/**
 * A table whose cells carry their column's title, so that on a narrow screen each row can
 * show as a card of labelled lines; wider tables scroll inside their own box, never the page.
 * @param {string} label
 * @param {string[]} titles
 */
export function dataTable(label, titles) {
  const body = el('tbody', {});
  const table = el('table', { 'aria-label': label, class: 'cards' }, el('thead', {}, el('tr', {}, ...titles.map((title) => el('th', { scope: 'col' }, title)))), body);
  return {
    box: el('div', { class: 'table-box' }, table),
    body,
    /**
     * @param {Record<string, string>} attributes
     * @param {HTMLElement[]} cells one `td` per column
     */
    row(attributes, ...cells) {
      cells.forEach((cell, i) => {
        const title = titles[i];
        if (!title) return;
        cell.dataset.label = title;
        // A card lays a labelled cell out as a grid of label and value: the value must be one item.
        if (cell.childNodes.length > 1) cell.replaceChildren(el('div', {}, ...cell.childNodes));
      });
      return el('tr', attributes, ...cells);
    },
  };
}

/**
 * A modal dialog that removes itself from the document once closed.
 * @param {HTMLElement[]} content
 * @returns {HTMLDialogElement}
 */
export function openDialog(...content) {
  const dialog = /** @type {HTMLDialogElement} */ (el('dialog', {}, ...content));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** @param {string} message */
export function notify(message) {
  toast.textContent = message;
  setTimeout(() => {
    if (toast.textContent === message) toast.textContent = '';
  }, 4000);
}

/**
 * What an empty list says: what is missing and what to do next, with the action itself if there is one.
 * @param {string} title
 * @param {string} text
 * @param {HTMLElement | null} [action]
 */
export function emptyState(title, text, action = null) {
  return el('div', { class: 'empty' }, el('h2', {}, title), el('p', {}, text), action);
}

/** @param {unknown} error */
export function errorBox(error) {
  return el('p', { class: 'error', role: 'alert' }, describe(error));
}

/** @param {string | null} iso */
export function formatTime(iso) {
  return iso === null ? '—' : new Date(iso).toLocaleString();
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
