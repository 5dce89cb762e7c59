// @ts-check
/** The keys of one team: search, status filter, endless scrolling, and each key's actions. */
import { PAGE_SIZE, api, describe } from './api.js';
import { dataTable, el, emptyState, errorBox, formatBytes, formatTime, main, notify } from './dom.js';
import { confirmRevoke, confirmRotate, openCreateKey, openEditKey } from './key-dialogs.js';
import { openExplain } from './explain-dialog.js';
import { openPropagation } from './propagation-dialog.js';

/** @import { Key, Team } from './api.js' */

/** @param {Key} key */
function grantsText(key) {
  const pools = key.pools.length === 0 ? 'all pools' : key.pools.join(', ');
  const countries = key.countries.length === 0 ? 'all countries' : key.countries.join(', ');
  return `${pools} · ${countries}`;
}

/** @param {Key} key @returns {string} where clients may use the key from, empty when from anywhere */
function clientsText(key) {
  return key.allowedClientCidrs.length === 0 ? '' : `clients from ${key.allowedClientCidrs.join(', ')}`;
}

/** @param {Key} key @returns {string} the key's limits, empty when it has none */
function limitsText(key) {
  const limits = [];
  if (key.rateLimit) limits.push(`${key.rateLimit.requestsPerSecond.toLocaleString()} req/s${key.rateLimit.burst && key.rateLimit.burst !== key.rateLimit.requestsPerSecond ? ` (burst ${key.rateLimit.burst.toLocaleString()})` : ''}`);
  if (key.concurrency?.perNode) limits.push(`${key.concurrency.perNode.toLocaleString()} per node`);
  if (key.concurrency?.perRegion) limits.push(`${key.concurrency.perRegion.toLocaleString()} per region`);
  if (key.monthlyQuotaBytes !== null) limits.push(`${formatBytes(key.monthlyUsedBytes ?? 0)} of ${formatBytes(key.monthlyQuotaBytes)} this month`);
  return limits.join(' · ');
}

/**
 * @param {Team} team
 * @param {string | null} proxyUrl where clients reach the proxy, for the snippets shown with a new secret
 * @param {string[]} scopes the signed-in token's: without keys:write no action that changes a key is offered,
 *   since the API would refuse it
 * @param {string} [revocationKeyId] a key whose propagation panel opens at once
 */
export function renderKeys(team, proxyUrl, scopes, revocationKeyId) {
  const mayWrite = scopes.includes('keys:write');
  const search = /** @type {HTMLInputElement} */ (el('input', { id: 'search', type: 'search', placeholder: 'name or sk_live_…', autocomplete: 'off' }));
  const status = /** @type {HTMLSelectElement} */ (
    el(
      'select',
      { id: 'status' },
      el('option', { value: '' }, 'All'),
      el('option', { value: 'active' }, 'Active'),
      el('option', { value: 'revoked' }, 'Revoked'),
      el('option', { value: 'expired' }, 'Expired'),
    )
  );
  const total = el('span', { class: 'muted', id: 'total', 'aria-live': 'polite' });
  const keys = dataTable('Keys', ['Name', 'Prefix', 'Status', 'Grants', 'Created', 'Last used', '']);
  const body = keys.body;
  const more = el('div', { class: 'more' });
  main.replaceChildren(
    el('h1', {}, `Keys · ${team.name}`),
    el(
      'div',
      { class: 'toolbar' },
      el('label', { for: 'search' }, 'Search by name or key prefix', search),
      el('label', { for: 'status' }, 'Status', status),
      total,
      el('span', { class: 'spacer' }),
      mayWrite ? el('button', { type: 'button', id: 'create-key', onclick: () => openCreateKey(team, proxyUrl, () => reload()) }, 'Create new key') : null,
    ),
    keys.box,
    more,
  );

  let generation = 0;
  /** @type {string | null} */
  let cursor = null;
  let loading = false;
  let exhausted = false;

  async function loadPage() {
    if (loading || exhausted) return;
    loading = true;
    const mine = generation;
    more.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (search.value.trim() !== '') query.set('q', search.value.trim());
    if (status.value !== '') query.set('status', status.value);
    if (cursor !== null) query.set('cursor', cursor);
    try {
      const page = await api('GET', `/v1/teams/${encodeURIComponent(team.id)}/keys?${query}`);
      if (mine !== generation) return;
      for (const key of /** @type {Key[]} */ (page.data)) body.append(keyRow(key));
      if (page.total !== undefined) {
        const count = page.totalCapped ? `${page.total.toLocaleString()}+` : page.total.toLocaleString();
        total.textContent = `${count} ${page.total === 1 && !page.totalCapped ? 'key' : 'keys'}`;
      }
      cursor = page.nextCursor;
      exhausted = cursor === null;
      if (exhausted) more.replaceChildren(body.children.length === 0 ? noKeys() : '');
      else more.replaceChildren(el('button', { type: 'button', class: 'secondary', id: 'load-more', onclick: () => loadPage() }, 'Load more'));
    } catch (error) {
      if (mine === generation) more.replaceChildren(errorBox(error), el('button', { type: 'button', class: 'secondary', onclick: () => loadPage() }, 'Try again'));
    } finally {
      if (mine === generation) loading = false;
    }
  }

  /** A team without keys is told how to start; a search without matches, how to widen it. */
  function noKeys() {
    if (search.value.trim() !== '' || status.value !== '') return emptyState('No keys match', 'Clear the search or choose another status to see more keys.');
    if (!mayWrite) {
      return emptyState('No keys yet', 'A key is what your scraper sends to the proxy as its password. This token may only read keys: ask your admin for a token with keys:write to create one.');
    }
    return emptyState(
      'No keys yet',
      'A key is what your scraper sends to the proxy as its password. Create your first key to start sending traffic.',
      el('button', { type: 'button', id: 'create-first-key', onclick: () => openCreateKey(team, proxyUrl, () => reload()) }, 'Create your first key'),
    );
  }

  function reload() {
    generation++;
    cursor = null;
    exhausted = false;
    loading = false;
    body.replaceChildren();
    total.textContent = '';
    void loadPage();
  }

  /** @param {Key} key */
  function keyRow(key) {
    const statusCell = el('td', { class: `status status-${key.status}` }, key.status);
    const actions = el('td', { class: 'actions-cell' });
    const row = keys.row(
      { 'data-key-id': key.id },
      el('td', { class: 'name' }, key.name),
      el('td', {}, el('code', {}, key.prefix)),
      statusCell,
      el(
        'td',
        {},
        grantsText(key),
        clientsText(key) === '' ? null : el('div', { class: 'client-cidrs' }, clientsText(key)),
        limitsText(key) === '' ? null : el('div', { class: 'muted' }, limitsText(key)),
      ),
      el('td', {}, formatTime(key.createdAt)),
      el('td', {}, formatTime(key.lastUsedAt)),
      actions,
    );
    if (key.status !== 'revoked' && mayWrite) {
      actions.append(
        el('button', { type: 'button', class: 'secondary', 'aria-label': `Edit ${key.name}`, onclick: () => openEditKey(team, key, (saved) => row.replaceWith(keyRow(saved))) }, 'Edit'),
      );
    }
    if (key.status === 'active' && mayWrite) {
      actions.append(
        el('button', { type: 'button', class: 'secondary', 'aria-label': `Rotate ${key.name}`, onclick: () => confirmRotate(team, key, proxyUrl) }, 'Rotate'),
        el(
          'button',
          {
            type: 'button',
            class: 'secondary',
            'aria-label': `Revoke ${key.name}`,
            onclick: () =>
              confirmRevoke(team, key, () => {
                statusCell.textContent = 'revoked';
                statusCell.className = 'status status-revoked';
                actions.replaceChildren(el('button', { type: 'button', class: 'link', onclick: () => openPropagation(team, key) }, 'Propagation'));
              }),
          },
          'Revoke',
        ),
      );
    } else if (key.status === 'revoked') {
      actions.append(el('button', { type: 'button', class: 'link', onclick: () => openPropagation(team, key) }, 'Propagation'));
    }
    actions.append(' ', el('a', { href: `#/usage/${encodeURIComponent(key.id)}`, 'aria-label': `Usage of ${key.name}` }, 'Usage'));
    actions.append(' ', el('button', { type: 'button', class: 'link', 'aria-label': `Test a proxy username for ${key.name}`, onclick: () => openExplain(team, key) }, 'Test'));
    return row;
  }

  let debounce = 0;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = window.setTimeout(reload, 250);
  });
  status.addEventListener('change', reload);
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) void loadPage();
  });
  observer.observe(more);
  void loadPage();
  if (revocationKeyId !== undefined) {
    void api('GET', `/v1/teams/${encodeURIComponent(team.id)}/keys/${encodeURIComponent(revocationKeyId)}`).then(
      (key) => openPropagation(team, key),
      (error) => notify(describe(error)),
    );
  }
}
