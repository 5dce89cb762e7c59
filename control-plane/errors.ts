/**
 * Every error the control plane's API answers with, in one table: its stable code, HTTP
 * status and message (`%s` takes the details given where it is thrown), and the headers
 * that go with it. Routes throw by code with `fail`; anything else thrown is translated to
 * one of these in one place (http/error-handler.ts). The README's error table lists them
 * all, and a test holds the two together.
 */

interface ErrorKind {
  status: number;
  message: string;
  headers?: Readonly<Record<string, string>>;
}

const RETRY_SOON = { 'retry-after': '1' } as const;

export const ERRORS = {
  // 400: the request itself is malformed.
  invalid_request: { status: 400, message: '%s' },
  invalid_json: { status: 400, message: 'the body is not valid JSON' },
  unknown_field: { status: 400, message: 'unknown field "%s" in %s' },
  missing_field: { status: 400, message: 'missing required field "%s" in %s' },
  invalid_field: { status: 400, message: '"%s" in %s %s' },
  cursor_invalid: { status: 400, message: 'cursor is malformed, tampered with, or belongs to another query; start again without it' },
  // 401 and 403: who is calling, and what they may do.
  token_missing: {
    status: 401,
    message: 'send an admin or team token as "Authorization: Bearer <token>"',
    headers: { 'www-authenticate': 'Bearer realm="portcullis"' },
  },
  token_invalid: { status: 401, message: 'the token is malformed or unknown', headers: { 'www-authenticate': 'Bearer error="invalid_token"' } },
  node_token_invalid: { status: 401, message: 'this API is for proxy nodes; send the node token' },
  token_expired: { status: 401, message: 'the token has expired; ask for a new one', headers: { 'www-authenticate': 'Bearer error="invalid_token"' } },
  token_revoked: { status: 401, message: 'the token was revoked', headers: { 'www-authenticate': 'Bearer error="invalid_token"' } },
  admin_required: { status: 403, message: 'this call needs the platform admin token' },
  scope_missing: { status: 403, message: 'this call needs the "%s" scope, which this token does not have' },
  // 404: nothing there (or nothing this caller may know of).
  route_not_found: { status: 404, message: 'no route for %s %s' },
  team_not_found: { status: 404, message: 'team not found' },
  key_not_found: { status: 404, message: 'key not found' },
  pool_not_found: { status: 404, message: 'pool not found' },
  token_not_found: { status: 404, message: 'token not found' },
  revocation_not_found: { status: 404, message: 'this key has not been revoked or rotated' },
  // 409: conflicts with what exists.
  conflict: { status: 409, message: 'a resource with these values already exists' },
  team_name_taken: { status: 409, message: 'a team named "%s" already exists' },
  key_name_taken: { status: 409, message: 'an active key named "%s" already exists in this team' },
  key_revoked: { status: 409, message: 'the key is revoked; create a new key instead' },
  pool_name_taken: { status: 409, message: 'a pool named "%s" already exists' },
  admin_token_configured: { status: 409, message: 'this admin token comes from the ADMIN_TOKEN setting; change the setting and restart to replace it' },
  // 413 and 415: the body cannot be read.
  body_too_large: { status: 413, message: 'request body is too large' },
  unsupported_media_type: { status: 415, message: 'send the body as application/json' },
  // 422: well-formed, but not acceptable.
  pool_unknown: { status: 422, message: 'unknown pool: %s' },
  country_unknown: { status: 422, message: '"%s" is not an ISO 3166-1 alpha-2 country code' },
  expires_at_in_past: { status: 422, message: 'expiresAt must be in the future' },
  client_cidr_invalid: { status: 422, message: '"%s" is not an IPv4 or IPv6 address or CIDR range such as 203.0.113.0/24 or 2001:db8::/32' },
  token_outlives_creator: { status: 422, message: 'a token cannot outlive the token that creates it (expires %s)' },
  exit_url_invalid: { status: 422, message: 'exit url "%s" must be "direct" or http://host:port' },
  exit_duplicate: { status: 422, message: 'exit %s %s is listed twice' },
  range_invalid: { status: 422, message: '"from" must be before "to"' },
  range_too_long: { status: 422, message: 'at most %s %ss per request; ask for day granularity or a shorter range' },
  // 500 and 503: our side.
  internal: { status: 500, message: 'internal error; the request id is in x-request-id' },
  database_timeout: { status: 503, message: 'the database took too long; try again', headers: RETRY_SOON },
  database_busy: { status: 503, message: 'the database is busy; try again', headers: RETRY_SOON },
  database_unavailable: { status: 503, message: 'the database cannot be reached; try again shortly', headers: RETRY_SOON },
  busy: { status: 503, message: 'too many list, search and export calls at once; try again', headers: RETRY_SOON },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERRORS;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    const kind: ErrorKind = ERRORS[code];
    this.statusCode = kind.status;
    this.headers = kind.headers ?? {};
  }
}

/** The error for `code`, its message's `%s` filled with `details` in order. */
export function fail(code: ErrorCode, ...details: (string | number)[]): ApiError {
  let next = 0;
  const message = ERRORS[code].message.replace(/%s/g, () => String(details[next++] ?? ''));
  return new ApiError(code, message);
}

/** The same error with its message prefixed by where it happened (`keys.3`), for calls that take a list. */
export function failedAt(field: string, error: ApiError): ApiError {
  return new ApiError(error.code, `${field}: ${error.message}`, { cause: error });
}
