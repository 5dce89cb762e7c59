// @ts-check
/**
 * The Portcullis dashboard: a small single-page app over the public /v1 API. Everything a
 * user typed is rendered with textContent (never as HTML), lists load page by page with
 * keyset cursors, and every API error is shown as a readable message.
 */

const TOKEN_KEY = 'portcullis.token';
const PAGE_SIZE = 100;
const PROPAGATION_POLL_MS = 250;
const PROPAGATION_GIVE_UP_MS = 60_000;

/** @typedef {{ id: string, name: string, createdAt: string }} Team */
/** @typedef {{ kind: 'admin' | 'team', team: Team | null }} Me */
/**
 * @typedef {{ id: string, teamId: string, name: string, prefix: string, status: string, pools: string[],
 *   countries: string[], expiresAt: string | null, createdAt: string, lastUsedAt: string | null, revokedAt: string | null }} Key
 */

class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Builds an element. Strings among the children become text nodes, so user data can
 * never turn into markup.
 * @param {string} tag
 * @param {Record<string, string | boolean | ((event: Event) => void)>} [attributes]
 * @param {(Node | string | null | undefined | false)[]} children
 * @returns {HTMLElement}
 */
function el(tag, attributes = {}, ...children) {
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

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const toast = /** @type {HTMLElement} */ (document.getElementById('toast'));

/** @param {string} message */
function notify(message) {
  toast.textContent = message;
  setTimeout(() => {
    if (toast.textContent === message) toast.textContent = '';
  }, 4000);
}

/** @param {unknown} error */
function describe(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  if (error instanceof TypeError) return 'The control plane cannot be reached. Check your connection and try again.';
  return error instanceof Error ? error.message : String(error);
}

/** @param {unknown} error */
function errorBox(error) {
  return el('p', { class: 'error', role: 'alert' }, describe(error));
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  /** @type {Record<string, string>} */
  const headers = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const problem = parsed?.error;
    if (response.status === 401 && path !== '/v1/me') signOut('Your session ended: the token was not accepted. Sign in again.');
    throw new ApiError(response.status, problem?.code ?? 'http_error', problem?.message ?? `The control plane answered ${response.status}.`);
  }
  return parsed;
}

/** @param {string | null} iso */
function formatTime(iso) {
  return iso === null ? '—' : new Date(iso).toLocaleString();
}

/** @type {{ me: Me | null, team: Team | null }} */
const session = { me: null, team: null };

/** @param {string} [message] */
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  session.me = null;
  session.team = null;
  location.hash = '#/keys';
  renderSignIn(message);
}

/** @param {string} [message] */
function renderSignIn(message) {
  setChrome(false);
  const input = /** @type {HTMLInputElement} */ (el('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' }));
  const problem = el('div', { 'aria-live': 'polite' }, message ? el('p', { class: 'error', role: 'alert' }, message) : null);
  const form = el(
    'form',
    {
      class: 'stack',
      onsubmit: async (event) => {
        event.preventDefault();
        problem.replaceChildren();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        try {
          await start();
        } catch (error) {
          sessionStorage.removeItem(TOKEN_KEY);
          problem.replaceChildren(error instanceof ApiError && error.status === 401 ? errorBox(new Error('That token was not accepted. Paste an admin or team token.')) : errorBox(error));
        }
      },
    },
    el('h1', {}, 'Sign in'),
    el('label', { for: 'token' }, 'Admin or team token', input),
    problem,
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Sign in')),
  );
  main.replaceChildren(el('section', { class: 'signin' }, form));
  input.focus();
}

/** @param {boolean} signedIn */
function setChrome(signedIn) {
  /** @type {HTMLElement} */ (document.getElementById('nav')).hidden = !signedIn;
  /** @type {HTMLElement} */ (document.getElementById('sign-out')).hidden = !signedIn;
  const who = /** @type {HTMLElement} */ (document.getElementById('who'));
  who.textContent = !signedIn || session.me === null ? '' : session.me.kind === 'admin' ? `Platform admin${session.team ? ` · ${session.team.name}` : ''}` : `Team ${session.team?.name ?? ''}`;
}

async function start() {
  session.me = /** @type {Me} */ (await api('GET', '/v1/me'));
  if (session.me.kind === 'team') session.team = session.me.team;
  route();
}

function route() {
  if (session.me === null) return renderSignIn();
  const [, view = 'keys', argument] = location.hash.split('/');
  for (const link of document.querySelectorAll('nav a')) {
    if (link instanceof HTMLElement && link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (view === 'pools') return renderPools();
  if (session.team === null) return renderTeamChooser(view);
  setChrome(true);
  if (view === 'activity') return renderActivity();
  if (view === 'usage') return renderUsage(argument);
  if (view === 'revocation' && argument !== undefined) return renderKeys(argument);
  return renderKeys();
}

/** @param {string} next */
async function renderTeamChooser(next) {
  setChrome(true);
  const list = el('ul', {});
  const more = el('div', { class: 'more' });
  main.replaceChildren(el('h1', {}, 'Choose a team'), list, more);
  /** @param {string | null} cursor */
  async function load(cursor) {
    more.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    try {
      const page = await api('GET', `/v1/teams?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      for (const team of /** @type {Team[]} */ (page.data)) {
        list.append(
          el('li', {}, el('button', { type: 'button', class: 'link', onclick: () => chooseTeam(team, next) }, team.name), ' ', el('span', { class: 'muted' }, team.id)),
        );
      }
      more.replaceChildren(page.nextCursor ? el('button', { type: 'button', class: 'secondary', onclick: () => load(page.nextCursor) }, 'Load more teams') : '');
      if (page.data.length === 0 && cursor === null) list.append(el('li', { class: 'muted' }, 'No teams yet. Create one with POST /v1/teams.'));
    } catch (error) {
      more.replaceChildren(errorBox(error));
    }
  }
  await load(null);
}

/** @param {Team} team @param {string} next */
function chooseTeam(team, next) {
  session.team = team;
  location.hash = `#/${next === 'activity' ? 'activity' : 'keys'}`;
  route();
}

/** @param {Key} key */
function grantsText(key) {
  const pools = key.pools.length === 0 ? 'all pools' : key.pools.join(', ');
  const countries = key.countries.length === 0 ? 'all countries' : key.countries.join(', ');
  return `${pools} · ${countries}`;
}

/** @param {string} [revocationKeyId] a key whose propagation panel opens at once */
function renderKeys(revocationKeyId) {
  const team = /** @type {Team} */ (session.team);
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
  const body = el('tbody', {});
  const table = el(
    'table',
    { 'aria-label': 'Keys' },
    el('thead', {}, el('tr', {}, ...['Name', 'Prefix', 'Status', 'Grants', 'Created', 'Last used', ''].map((title) => el('th', { scope: 'col' }, title)))),
    body,
  );
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
      el('button', { type: 'button', id: 'create-key', onclick: () => openCreateKey(team, () => reload()) }, 'Create new key'),
    ),
    table,
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
      if (exhausted) more.replaceChildren(body.children.length === 0 ? el('p', { class: 'muted' }, 'No keys match.') : '');
      else more.replaceChildren(el('button', { type: 'button', class: 'secondary', id: 'load-more', onclick: () => loadPage() }, 'Load more'));
    } catch (error) {
      if (mine === generation) more.replaceChildren(errorBox(error), el('button', { type: 'button', class: 'secondary', onclick: () => loadPage() }, 'Try again'));
    } finally {
      if (mine === generation) loading = false;
    }
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
    const actions = el('td', {});
    const row = el(
      'tr',
      { 'data-key-id': key.id },
      el('td', { class: 'name' }, key.name),
      el('td', {}, el('code', {}, key.prefix)),
      statusCell,
      el('td', {}, grantsText(key)),
      el('td', {}, formatTime(key.createdAt)),
      el('td', {}, formatTime(key.lastUsedAt)),
      actions,
    );
    if (key.status === 'active') {
      actions.append(
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

/**
 * @param {HTMLElement[]} content
 * @returns {HTMLDialogElement}
 */
function openDialog(...content) {
  const dialog = /** @type {HTMLDialogElement} */ (el('dialog', {}, ...content));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** @param {Team} team @param {() => void} onCreated */
async function openCreateKey(team, onCreated) {
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
function confirmRevoke(team, key, onRevoked) {
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

/**
 * A live view of a revocation reaching every region and node, polled until complete.
 * @param {Team} team
 * @param {Pick<Key, 'id' | 'name'>} key
 */
function openPropagation(team, key) {
  const summary = el('p', { id: 'propagation-summary', 'aria-live': 'polite' }, 'Waiting for the first node reports…');
  const regions = el('div', { class: 'stack' });
  let stopped = false;
  const dialog = openDialog(
    el(
      'div',
      { class: 'stack', id: 'propagation' },
      el('h2', {}, `Revocation of “${key.name}”`),
      summary,
      regions,
      el('div', { class: 'actions' }, el('button', { type: 'button', onclick: () => dialog.close() }, 'Close')),
    ),
  );
  dialog.addEventListener('close', () => {
    stopped = true;
  });
  const started = Date.now();
  async function poll() {
    if (stopped) return;
    try {
      const status = await api('GET', `/v1/teams/${encodeURIComponent(team.id)}/keys/${encodeURIComponent(key.id)}/revocation`);
      regions.replaceChildren(
        ...status.regions.map((/** @type {any} */ region) =>
          el(
            'section',
            { class: 'region' },
            el('h3', {}, `${region.region}: ${region.applied} of ${region.total} nodes`),
            el(
              'ul',
              {},
              ...region.nodes.map((/** @type {any} */ node) =>
                el(
                  'li',
                  { class: node.applied ? 'applied' : 'pending' },
                  `${node.nodeId}: `,
                  node.applied
                    ? node.afterMs === null
                      ? 'applied (started after the revocation)'
                      : `applied after ${node.afterMs} ms${node.closedConnections > 0 ? `, closed ${node.closedConnections} connection${node.closedConnections === 1 ? '' : 's'}` : ''}`
                    : 'waiting…',
                ),
              ),
            ),
            region.total === 0 ? el('p', { class: 'muted' }, region.published ? 'No live node in this region.' : 'Not yet published to this region.') : null,
          ),
        ),
      );
      if (status.complete) {
        summary.className = 'done';
        summary.textContent = `Revoked everywhere: ${status.liveNodes} node${status.liveNodes === 1 ? '' : 's'}, slowest after ${status.slowestMs ?? 0} ms.`;
        return;
      }
      summary.textContent =
        status.liveNodes === 0 ? 'No proxy node is reporting right now.' : `Applied on ${status.liveNodes - status.pendingNodes} of ${status.liveNodes} nodes…`;
    } catch (error) {
      summary.replaceChildren(errorBox(error));
    }
    if (Date.now() - started < PROPAGATION_GIVE_UP_MS) setTimeout(poll, PROPAGATION_POLL_MS);
    else summary.append(' Still not complete: a node may be unreachable.');
  }
  void poll();
}

function renderActivity() {
  const team = /** @type {Team} */ (session.team);
  const body = el('tbody', {});
  const more = el('div', { class: 'more' });
  main.replaceChildren(
    el('h1', {}, `Activity · ${team.name}`),
    el(
      'table',
      { 'aria-label': 'Activity' },
      el('thead', {}, el('tr', {}, ...['When', 'Who', 'What', 'Target', ''].map((title) => el('th', { scope: 'col' }, title)))),
      body,
    ),
    more,
  );
  /** @param {string | null} cursor */
  async function load(cursor) {
    more.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    try {
      const page = await api('GET', `/v1/teams/${encodeURIComponent(team.id)}/activity?limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      for (const entry of page.data) {
        const who = entry.actor.type === 'admin' ? 'platform admin' : entry.actor.type === 'team_token' ? `team token ${entry.actor.id}` : 'system';
        const name = typeof entry.details?.name === 'string' ? ` “${entry.details.name}”` : '';
        body.append(
          el(
            'tr',
            { 'data-action': entry.action },
            el('td', {}, formatTime(entry.createdAt)),
            el('td', {}, who, entry.ip ? el('div', { class: 'muted' }, entry.ip) : null),
            el('td', {}, entry.action),
            el('td', { class: 'name' }, `${entry.target.type} ${entry.target.id}${name}`),
            el(
              'td',
              {},
              entry.action === 'key.revoked' || entry.action === 'key.rotated'
                ? el('a', { href: `#/revocation/${entry.target.id}` }, 'Propagation status')
                : '',
            ),
          ),
        );
      }
      more.replaceChildren(page.nextCursor ? el('button', { type: 'button', class: 'secondary', onclick: () => load(page.nextCursor) }, 'Load more') : '');
      if (cursor === null && page.data.length === 0) more.replaceChildren(el('p', { class: 'muted' }, 'No activity yet.'));
    } catch (error) {
      more.replaceChildren(errorBox(error));
    }
  }
  void load(null);
}

/** @param {number} bytes */
function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

const SVG = 'http://www.w3.org/2000/svg';

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attributes
 * @param {(Node | string)[]} children
 */
function svg(tag, attributes, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

/**
 * A bar per bucket, traffic in and out stacked; the numbers are in the table below it.
 * @param {{ start: string, bytesIn: number, bytesOut: number }[]} points
 */
function usageChart(points) {
  const width = 960;
  const height = 220;
  const max = Math.max(1, ...points.map((point) => point.bytesIn + point.bytesOut));
  const step = width / Math.max(points.length, 1);
  const bars = points.map((point, i) => {
    const outHeight = (point.bytesOut / max) * (height - 20);
    const inHeight = (point.bytesIn / max) * (height - 20);
    const x = i * step + 1;
    const barWidth = Math.max(1, step - 2);
    return svg(
      'g',
      {},
      svg('title', {}, `${new Date(point.start).toLocaleString()}: ${formatBytes(point.bytesOut)} down, ${formatBytes(point.bytesIn)} up`),
      svg('rect', { x, y: height - outHeight, width: barWidth, height: outHeight, class: 'bar-out' }),
      svg('rect', { x, y: height - outHeight - inHeight, width: barWidth, height: inHeight, class: 'bar-in' }),
    );
  });
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': 'Traffic per period' }, ...bars);
}

/**
 * Every bucket of the range, with zero where there was no traffic, so bars line up with time.
 * @param {{ start: string, bytesIn: number, bytesOut: number }[]} points
 * @param {string} from
 * @param {string} to
 * @param {number} bucketMs
 */
function fillGaps(points, from, to, bucketMs) {
  const byStart = new Map(points.map((point) => [new Date(point.start).getTime(), point]));
  const filled = [];
  for (let start = Math.floor(Date.parse(from) / bucketMs) * bucketMs; start < Date.parse(to); start += bucketMs) {
    filled.push(byStart.get(start) ?? { start: new Date(start).toISOString(), bytesIn: 0, bytesOut: 0 });
  }
  return filled;
}

/** @param {string} [keyId] */
function renderUsage(keyId) {
  const team = /** @type {Team} */ (session.team);
  const range = /** @type {HTMLSelectElement} */ (
    el('select', { id: 'usage-range' }, el('option', { value: 'hour' }, 'Last 24 hours, by hour'), el('option', { value: 'day' }, 'Last 30 days, by day'))
  );
  const title = el('h1', {}, keyId === undefined ? `Usage · ${team.name}` : 'Usage of a key');
  const summary = el('p', { id: 'usage-summary', 'aria-live': 'polite' }, 'Loading…');
  const chart = el('div', { class: 'chart-box' });
  const body = el('tbody', {});
  main.replaceChildren(
    title,
    el('div', { class: 'toolbar' }, el('label', { for: 'usage-range' }, 'Period', range), keyId === undefined ? '' : el('a', { href: '#/usage' }, 'Whole team')),
    summary,
    chart,
    el(
      'table',
      { 'aria-label': 'Usage' },
      el('thead', {}, el('tr', {}, ...['Period starting', 'Downloaded', 'Uploaded', 'Requests', 'Tunnels'].map((name) => el('th', { scope: 'col' }, name)))),
      body,
    ),
  );
  const base = `/v1/teams/${encodeURIComponent(team.id)}${keyId === undefined ? '' : `/keys/${encodeURIComponent(keyId)}`}`;
  if (keyId !== undefined) {
    api('GET', `/v1/teams/${encodeURIComponent(team.id)}/keys/${encodeURIComponent(keyId)}`).then(
      (key) => (title.textContent = `Usage · ${key.name}`),
      (error) => summary.replaceChildren(errorBox(error)),
    );
  }
  async function load() {
    const granularity = range.value;
    const from = new Date(Date.now() - (granularity === 'hour' ? 24 : 30 * 24) * 3_600_000).toISOString();
    summary.textContent = 'Loading…';
    try {
      const usage = await api('GET', `${base}/usage?granularity=${granularity}&from=${encodeURIComponent(from)}`);
      /** @type {{ start: string, bytesIn: number, bytesOut: number, requests: number, tunnels: number }[]} */
      const points = usage.data;
      const chartPoints = fillGaps(points, usage.from, usage.to, granularity === 'hour' ? 3_600_000 : 86_400_000);
      const total = points.reduce((sum, point) => ({ down: sum.down + point.bytesOut, up: sum.up + point.bytesIn, requests: sum.requests + point.requests, tunnels: sum.tunnels + point.tunnels }), {
        down: 0,
        up: 0,
        requests: 0,
        tunnels: 0,
      });
      const plural = (/** @type {number} */ count, /** @type {string} */ word) => `${count.toLocaleString()} ${word}${count === 1 ? '' : 's'}`;
      summary.textContent = `${formatBytes(total.down)} downloaded, ${formatBytes(total.up)} uploaded, ${plural(total.requests, 'request')}, ${plural(total.tunnels, 'tunnel')}.`;
      chart.replaceChildren(points.length === 0 ? el('p', { class: 'muted' }, 'No traffic in this period.') : usageChart(chartPoints));
      body.replaceChildren(
        ...points.map((point) =>
          el('tr', {}, el('td', {}, formatTime(point.start)), el('td', {}, formatBytes(point.bytesOut)), el('td', {}, formatBytes(point.bytesIn)), el('td', {}, point.requests.toLocaleString()), el('td', {}, point.tunnels.toLocaleString())),
        ),
      );
    } catch (error) {
      summary.replaceChildren(errorBox(error));
    }
  }
  range.addEventListener('change', () => void load());
  void load();
}

async function renderPools() {
  setChrome(true);
  const body = el('tbody', {});
  const more = el('div', { class: 'more' }, el('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(
    el('h1', {}, 'Pools'),
    el(
      'table',
      { 'aria-label': 'Pools' },
      el('thead', {}, el('tr', {}, ...['Pool', 'Country', 'Exits', 'Healthy exits'].map((title) => el('th', { scope: 'col' }, title)))),
      body,
    ),
    more,
  );
  try {
    const page = await api('GET', '/v1/pools?limit=500');
    for (const pool of page.data) {
      for (const country of pool.countries) {
        body.append(
          el('tr', {}, el('td', {}, pool.name), el('td', {}, `${country.name} (${country.country})`), el('td', {}, String(country.exits)), el('td', {}, country.healthy === null ? 'no node reporting' : String(country.healthy))),
        );
      }
    }
    more.replaceChildren(page.data.length === 0 ? el('p', { class: 'muted' }, 'No pools defined.') : '');
  } catch (error) {
    more.replaceChildren(errorBox(error));
  }
}

/** @type {HTMLElement} */ (document.getElementById('sign-out')).addEventListener('click', () => signOut());
window.addEventListener('hashchange', () => {
  if (session.me !== null) route();
});
if (sessionStorage.getItem(TOKEN_KEY) === null) renderSignIn();
else start().catch((error) => renderSignIn(describe(error)));
