// @ts-check
/**
 * Calls to the public /v1 API with the signed-in token, and the shapes the dashboard reads
 * from it. Every failure becomes an ApiError or a TypeError that describe() can put into words.
 */

/** @typedef {{ id: string, name: string, createdAt: string }} Team */
/**
 * @typedef {{ id: string, teamId: string | null, name: string, prefix: string | null, scopes: string[], status: string,
 *   createdAt: string, expiresAt: string | null, lastUsedAt: string | null, revokedAt: string | null }} Token
 */
/** @typedef {{ kind: 'admin' | 'team', team: Team | null, scopes: string[], token: Token | null, proxyUrl?: string | null }} Me */
/**
 * @typedef {{ id: string, teamId: string, name: string, prefix: string, status: string, pools: string[],
 *   countries: string[], expiresAt: string | null, createdAt: string, lastUsedAt: string | null, revokedAt: string | null,
 *   rateLimit: { requestsPerSecond: number, burst?: number } | null, concurrency: { perNode?: number | null, perRegion?: number | null } | null,
 *   monthlyQuotaBytes: number | null, monthlyUsedBytes: number, allowedClientCidrs: string[] }} Key
 */

/** sessionStorage, not localStorage: the token should not outlive the tab. */
const TOKEN_KEY = 'portcullis.token';

export const PAGE_SIZE = 100;

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @param {string} token */
export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export function hasToken() {
  return sessionStorage.getItem(TOKEN_KEY) !== null;
}

/** @type {() => void} */
let tokenRejected = () => {};

/**
 * What to do when the API stops accepting the token. The entry module sets it because it
 * owns the session and the sign-in page; importing those here would make an import cycle.
 * @param {() => void} handler
 */
export function whenTokenRejected(handler) {
  tokenRejected = handler;
}

/** @param {unknown} error */
export function describe(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  if (error instanceof TypeError) return 'The control plane cannot be reached. Check your connection and try again.';
  return error instanceof Error ? error.message : String(error);
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
export async function api(method, path, body) {
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
    // A 401 from /v1/me is the sign-in attempt itself failing, which the sign-in form reports.
    if (response.status === 401 && path !== '/v1/me') tokenRejected();
    throw new ApiError(response.status, problem?.code ?? 'http_error', problem?.message ?? `The control plane answered ${response.status}.`);
  }
  return parsed;
}
