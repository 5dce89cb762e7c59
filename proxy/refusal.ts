/**
 * Every way a proxy node refuses a request, from DESIGN's error table. A refusal is a
 * value created in one place (here) and rendered in one place (`renderRefusal`): the
 * status, the code twice (X-Portcullis-Error and RFC 9209 Proxy-Status), and one line
 * telling the client how to fix it.
 */

export type RefusalCode =
  | 'auth_required'
  | 'key_invalid'
  | 'key_revoked'
  | 'key_expired'
  | 'pool_forbidden'
  | 'country_forbidden'
  | 'client_forbidden'
  | 'destination_forbidden'
  | 'rate_limited'
  | 'quota_exceeded'
  | 'concurrency_exceeded'
  | 'country_unknown'
  | 'targeting_unsupported'
  | 'bad_request'
  | 'exit_failed'
  | 'dns_error'
  | 'auth_unavailable'
  | 'no_exit'
  | 'internal';

/** The username's targeting parts and their `Proxy-*` headers (README "Using the proxy"). */
export const TARGETING_PARTS = 'country, city, state, asn, session, sesstime, pool';

interface RefusalKind {
  status: number;
  /** The RFC 9209 error type that best matches. */
  proxyStatusError: string;
  hint: string;
}

export const REFUSALS: Readonly<Record<RefusalCode, RefusalKind>> = {
  auth_required: { status: 407, proxyStatusError: 'http_request_denied', hint: 'Send your API key: curl -x http://user:KEY@host:port, or Proxy-Authorization: Bearer KEY.' },
  key_invalid: { status: 407, proxyStatusError: 'http_request_denied', hint: 'The API key is malformed or unknown. Check it was copied whole.' },
  key_revoked: { status: 407, proxyStatusError: 'http_request_denied', hint: 'This API key has been revoked. Create or rotate a key in the dashboard.' },
  key_expired: { status: 407, proxyStatusError: 'http_request_denied', hint: 'This API key has expired. Create a new key or extend its expiry.' },
  pool_forbidden: { status: 403, proxyStatusError: 'http_request_denied', hint: 'This key is not granted that pool. Ask your admin to grant it.' },
  country_forbidden: { status: 403, proxyStatusError: 'http_request_denied', hint: 'This key is not granted that country. Ask your admin to grant it.' },
  client_forbidden: { status: 403, proxyStatusError: 'http_request_denied', hint: "This key may not be used from your address. Ask your admin to add it to the key's allowedClientCidrs." },
  destination_forbidden: { status: 403, proxyStatusError: 'destination_ip_prohibited', hint: 'Private, loopback, link-local, metadata addresses and port 25 cannot be reached through the proxy.' },
  rate_limited: { status: 429, proxyStatusError: 'http_request_denied', hint: 'Request rate limit reached for this key. Retry after the Retry-After delay.' },
  quota_exceeded: { status: 429, proxyStatusError: 'http_request_denied', hint: 'Traffic quota used up for this period. Raise the quota or wait for the next period.' },
  concurrency_exceeded: { status: 429, proxyStatusError: 'connection_limit_reached', hint: 'Too many open connections for this key. Close some and retry.' },
  country_unknown: { status: 400, proxyStatusError: 'http_request_error', hint: 'Unknown country. Use an ISO 3166-1 alpha-2 code such as DE or US.' },
  targeting_unsupported: { status: 400, proxyStatusError: 'http_request_error', hint: `Unknown targeting part. Supported: ${TARGETING_PARTS}.` },
  bad_request: { status: 400, proxyStatusError: 'http_request_error', hint: 'Malformed proxy request or targeting parameters.' },
  exit_failed: { status: 502, proxyStatusError: 'destination_unavailable', hint: 'The exit or the target failed after retries. Retry later or try another country.' },
  dns_error: { status: 502, proxyStatusError: 'dns_error', hint: "The target's host name does not resolve. Check the URL." },
  auth_unavailable: { status: 503, proxyStatusError: 'proxy_internal_error', hint: 'The key cannot be verified right now. Retry shortly.' },
  no_exit: { status: 503, proxyStatusError: 'destination_unavailable', hint: 'No healthy exit for that country right now. Retry later or try another country.' },
  internal: { status: 500, proxyStatusError: 'proxy_internal_error', hint: 'The proxy failed unexpectedly. Retry; if it keeps happening, tell the operator.' },
};

/**
 * A refusal is an expected outcome, not a fault: a plain value (thrown through the
 * admission path, but not an Error), so refusing a flood of bad keys captures no stack
 * trace per request.
 */
export class Refusal {
  constructor(
    readonly code: RefusalCode,
    /** Seconds, for 429 and 503 answers. */
    readonly retryAfterSeconds?: number,
    /** Extra headers such as X-RateLimit-*. */
    readonly extraHeaders?: Record<string, string>,
    /** A hint naming what this request asked for, in place of the table's (see `quoted`). */
    readonly hint?: string,
  ) {}

  get status(): number {
    return REFUSALS[this.code].status;
  }
}

/**
 * Client text quoted in a hint: a short run of safe characters, so a hint stays one line
 * of plain text whatever the client sent.
 */
export function quoted(text: string): string {
  return `"${text.slice(0, 40).replace(/[^A-Za-z0-9_.]/g, '?')}"`;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  407: 'Proxy Authentication Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

const bodyOf = (code: RefusalCode, hint: string) => `${code}: ${hint}\n`;

/** Pre-rendered responses: refusals are frequent under attack and must cost little. */
const RENDERED = new Map<RefusalCode, { head: string; body: string; headWithLength: string }>(
  (Object.keys(REFUSALS) as RefusalCode[]).map((code) => {
    const kind = REFUSALS[code];
    let head =
      `HTTP/1.1 ${kind.status} ${STATUS_TEXT[kind.status]}\r\n` +
      `X-Portcullis-Error: ${code}\r\n` +
      `Proxy-Status: portcullis; error=${kind.proxyStatusError}; details="${code}"\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n';
    if (kind.status === 407) head += 'Proxy-Authenticate: Basic realm="portcullis"\r\n';
    const body = bodyOf(code, kind.hint);
    return [code, { head, body, headWithLength: `${head}Content-Length: ${Buffer.byteLength(body)}\r\n` }];
  }),
);

function bodyFor(refusal: Refusal): string {
  return refusal.hint === undefined ? RENDERED.get(refusal.code)!.body : bodyOf(refusal.code, refusal.hint);
}

/**
 * The raw HTTP/1.1 response for a refusal. `keepAlive` keeps the client connection open
 * (plain HTTP); CONNECT refusals and broken requests close it. `traceId`: the request's
 * trace, when tracing is on.
 */
export function renderRefusal(refusal: Refusal, keepAlive: boolean, traceId?: string): string {
  const rendered = RENDERED.get(refusal.code)!;
  const body = bodyFor(refusal);
  let head = refusal.hint === undefined ? rendered.headWithLength : `${rendered.head}Content-Length: ${Buffer.byteLength(body)}\r\n`;
  if (refusal.retryAfterSeconds !== undefined) head += `Retry-After: ${Math.max(1, Math.ceil(refusal.retryAfterSeconds))}\r\n`;
  if (refusal.extraHeaders !== undefined) {
    for (const name in refusal.extraHeaders) head += `${name}: ${refusal.extraHeaders[name]}\r\n`;
  }
  if (traceId !== undefined) head += `X-Portcullis-Trace-Id: ${traceId}\r\n`;
  head += keepAlive ? 'Connection: keep-alive\r\n' : 'Connection: close\r\n';
  return `${head}\r\n${body}`;
}

/** Status line, headers and body as separate parts, for answering through a ServerResponse. */
export function refusalParts(refusal: Refusal): { status: number; headers: Record<string, string>; body: string } {
  const kind = REFUSALS[refusal.code];
  const body = bodyFor(refusal);
  const headers: Record<string, string> = {
    'x-portcullis-error': refusal.code,
    'proxy-status': `portcullis; error=${kind.proxyStatusError}; details="${refusal.code}"`,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  };
  if (kind.status === 407) headers['proxy-authenticate'] = 'Basic realm="portcullis"';
  if (refusal.retryAfterSeconds !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(refusal.retryAfterSeconds)));
  if (refusal.extraHeaders !== undefined) Object.assign(headers, refusal.extraHeaders);
  return { status: kind.status, headers, body };
}
