// @ts-check
/**
 * The fields of a key's grants and limits, shared by the create and edit dialogs: pools,
 * countries, expiry, the client addresses allowed, rate limit, concurrency caps and monthly
 * quota. Empty means "no limit".
 */
import { ApiError, api, describe } from './api.js';
import { el, errorBox } from './dom.js';

/** @import { Key } from './api.js' */

const BYTES_PER_GB = 1_000_000_000;

/** @param {string} iso @returns {string} the value a datetime-local input shows for it */
function localInputValue(iso) {
  const date = new Date(iso);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/**
 * @param {string} id
 * @param {string} label
 * @param {number | null | undefined} value
 * @param {Record<string, string>} [extra]
 */
function numberField(id, label, value, extra = {}) {
  const input = /** @type {HTMLInputElement} */ (el('input', { id, type: 'number', min: '1', step: '1', inputmode: 'numeric', ...extra }));
  if (value !== null && value !== undefined) input.value = String(value);
  return { input, label: el('label', { for: id }, label, input) };
}

/** @param {HTMLInputElement} input @returns {number | null} */
function numberOrNull(input) {
  return input.value.trim() === '' ? null : Number(input.value);
}

/**
 * @param {Key | null} key the key being edited, or null for a new one
 * @returns {{ elements: HTMLElement[], read(): Record<string, unknown>, placeError(error: unknown): boolean }} `read` gives
 *   every grant and limit (a new key: only those set), and the expiry only when it changed, so an expired key can still be
 *   edited; `placeError` shows an error that belongs to one field next to it, and says whether it did.
 */
export function keyFields(key) {
  const countries = /** @type {HTMLInputElement} */ (el('input', { id: 'key-countries', name: 'countries', placeholder: 'DE, US (empty: all countries)', autocomplete: 'off' }));
  countries.value = key?.countries.join(', ') ?? '';
  const expires = /** @type {HTMLInputElement} */ (el('input', { id: 'key-expires', name: 'expires', type: 'datetime-local' }));
  const originalExpiry = key?.expiresAt ? localInputValue(key.expiresAt) : '';
  expires.value = originalExpiry;
  const clientCidrs = /** @type {HTMLTextAreaElement} */ (
    el('textarea', { id: 'key-client-cidrs', name: 'allowedClientCidrs', rows: '3', placeholder: '203.0.113.0/24\n2001:db8::/32', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'key-client-cidrs-problem' })
  );
  clientCidrs.value = key?.allowedClientCidrs.join('\n') ?? '';
  const clientCidrsProblem = el('div', { id: 'key-client-cidrs-problem', 'aria-live': 'polite' });
  const rate = numberField('key-rate', 'Requests per second', key?.rateLimit?.requestsPerSecond);
  // A burst equal to the rate is the API's default: left empty, it follows a changed rate.
  const burst = numberField('key-burst', 'Burst (requests)', key?.rateLimit?.burst === key?.rateLimit?.requestsPerSecond ? null : key?.rateLimit?.burst);
  const perNode = numberField('key-per-node', 'Connections per node', key?.concurrency?.perNode);
  const perRegion = numberField('key-per-region', 'Connections per region', key?.concurrency?.perRegion);
  const quota = numberField('key-quota', 'Monthly quota (GB)', key?.monthlyQuotaBytes == null ? null : key.monthlyQuotaBytes / BYTES_PER_GB, { step: 'any', min: '0.000000001', inputmode: 'decimal' });
  const poolChecks = el('div', { class: 'checks' }, el('span', { class: 'muted' }, 'Loading pools…'));
  // Until the pools are listed, no box is checked: an edit sent meanwhile must leave the key's pools alone, not widen them to all.
  let poolsShown = false;
  api('GET', '/v1/pools?limit=500').then(
    (page) => {
      poolsShown = true;
      poolChecks.replaceChildren(
        ...page.data.map((/** @type {{ name: string }} */ pool) =>
          el('label', {}, el('input', { type: 'checkbox', name: 'pool', value: pool.name, checked: key?.pools.includes(pool.name) ?? false }), pool.name),
        ),
      );
      if (page.data.length === 0) poolChecks.replaceChildren(el('span', { class: 'muted' }, 'No pools defined.'));
    },
    (error) => poolChecks.replaceChildren(errorBox(error)),
  );
  const elements = [
    el('fieldset', {}, el('legend', {}, 'Pools (none checked: all pools)'), poolChecks),
    el('label', { for: 'key-countries' }, 'Countries, as ISO codes', countries),
    el('label', { for: 'key-expires' }, 'Expires (optional)', expires),
    el('label', { for: 'key-client-cidrs' }, 'Client addresses allowed, one range per line (empty: any)', clientCidrs, clientCidrsProblem),
    el(
      'fieldset',
      { class: 'limits' },
      el('legend', {}, 'Limits (empty: no limit)'),
      el('div', { class: 'grid' }, rate.label, burst.label, perNode.label, perRegion.label, quota.label),
    ),
  ];
  return {
    elements,
    placeError(error) {
      clientCidrs.removeAttribute('aria-invalid');
      clientCidrsProblem.replaceChildren();
      if (!(error instanceof ApiError && error.code === 'client_cidr_invalid')) return false;
      clientCidrs.setAttribute('aria-invalid', 'true');
      clientCidrsProblem.replaceChildren(el('p', { class: 'error field-error', role: 'alert' }, describe(error)));
      clientCidrs.focus();
      return true;
    },
    read() {
      /** @type {Record<string, unknown>} */
      const body = {};
      const pools = [...poolChecks.querySelectorAll('input[name="pool"]:checked')].map((input) => /** @type {HTMLInputElement} */ (input).value);
      const codes = countries.value.split(/[\s,]+/).filter(Boolean);
      // No range contains a space or a comma, so a pasted list splits as well as one range a line.
      const ranges = clientCidrs.value.split(/[\s,]+/).filter(Boolean);
      if (expires.value !== originalExpiry) body.expiresAt = expires.value === '' ? null : new Date(expires.value).toISOString();
      const requestsPerSecond = numberOrNull(rate.input);
      const burstSize = numberOrNull(burst.input);
      const rateLimit = requestsPerSecond === null ? null : burstSize === null ? { requestsPerSecond } : { requestsPerSecond, burst: burstSize };
      const caps = { perNode: numberOrNull(perNode.input), perRegion: numberOrNull(perRegion.input) };
      const concurrency = caps.perNode === null && caps.perRegion === null ? null : caps;
      const gigabytes = numberOrNull(quota.input);
      const monthlyQuotaBytes = gigabytes === null ? null : Math.max(1, Math.round(gigabytes * BYTES_PER_GB));
      if (key === null) {
        if (pools.length > 0) body.pools = pools;
        if (codes.length > 0) body.countries = codes;
        if (ranges.length > 0) body.allowedClientCidrs = ranges;
        if (rateLimit !== null) body.rateLimit = rateLimit;
        if (concurrency !== null) body.concurrency = concurrency;
        if (monthlyQuotaBytes !== null) body.monthlyQuotaBytes = monthlyQuotaBytes;
        return body;
      }
      return { ...body, ...(poolsShown ? { pools } : {}), countries: codes, allowedClientCidrs: ranges, rateLimit, concurrency, monthlyQuotaBytes };
    },
  };
}
