import type { IncomingHttpHeaders } from 'node:http';
import { normalizeCountryCode } from '../../geo/countries.js';
import { Refusal } from '../refusal.js';

/**
 * What a client asked for, read from its credentials and targeting headers (DESIGN
 * "Credentials a proxy node accepts").
 */
export interface ClientRequestTarget {
  key: string;
  /** Where the key came from; `authorization` must be stripped before forwarding. */
  source: 'proxy-authorization' | 'authorization';
  country: string | undefined;
  pool: string | undefined;
  sessionId: string | undefined;
  sessionMinutes: number | undefined;
}

const MAX_CREDENTIAL_LENGTH = 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const SESSION_ID = /^[A-Za-z0-9_]{1,64}$/;
const POOL_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MAX_SESSION_MINUTES = 24 * 60;

interface Targeting {
  country?: string;
  pool?: string;
  sessionId?: string;
  sessionMinutes?: number;
}

/**
 * Reads the username's targeting parameters, as commercial providers do:
 * `team-country-de-session-abc123-sesstime-10` (words other than parameters are ignored).
 */
function parseUsername(username: string, into: Targeting): void {
  const parts = username.split('-');
  for (let i = 0; i < parts.length - 1; i++) {
    const name = parts[i]!.toLowerCase();
    const value = parts[i + 1]!;
    switch (name) {
      case 'country':
        into.country = value;
        i++;
        break;
      case 'pool':
        into.pool = value;
        i++;
        break;
      case 'session':
        into.sessionId = value;
        i++;
        break;
      case 'sesstime':
        into.sessionMinutes = Number(value);
        if (!/^\d{1,5}$/.test(value)) throw new Refusal('bad_request');
        i++;
        break;
    }
  }
}

function fromProxyAuthorization(header: string, targeting: Targeting): string {
  if (header.length > MAX_CREDENTIAL_LENGTH) throw new Refusal('key_invalid');
  const space = header.indexOf(' ');
  if (space <= 0) throw new Refusal('key_invalid');
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') return value;
  if (scheme !== 'basic' || !BASE64.test(value)) throw new Refusal('key_invalid');
  const decoded = Buffer.from(value, 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new Refusal('key_invalid');
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  parseUsername(username, targeting);
  // `curl -U KEY:` sends the key as the username with an empty password.
  return password === '' ? username : password;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Extracts the key and targeting from a request. Throws a Refusal: `auth_required` with no
 * credentials, `key_invalid` for credentials that cannot be read, `bad_request` and
 * `country_unknown` for malformed targeting.
 */
export function readCredentials(headers: IncomingHttpHeaders, isConnect: boolean): ClientRequestTarget {
  const targeting: Targeting = {};
  let key: string;
  let source: ClientRequestTarget['source'] = 'proxy-authorization';
  const proxyAuthorization = headerValue(headers, 'proxy-authorization');
  if (proxyAuthorization !== undefined) {
    key = fromProxyAuthorization(proxyAuthorization, targeting);
  } else {
    const authorization = isConnect ? undefined : headerValue(headers, 'authorization');
    // Only a Bearer sk_ key here is ours; any other Authorization belongs to the target.
    if (authorization === undefined || !/^bearer sk_/i.test(authorization)) throw new Refusal('auth_required');
    if (authorization.length > MAX_CREDENTIAL_LENGTH) throw new Refusal('key_invalid');
    key = authorization.slice('bearer '.length).trim();
    source = 'authorization';
  }

  const countryHeader = headerValue(headers, 'proxy-country');
  if (countryHeader !== undefined) targeting.country = countryHeader;
  const sessionHeader = headerValue(headers, 'proxy-session');
  if (sessionHeader !== undefined) targeting.sessionId = sessionHeader;
  const poolHeader = headerValue(headers, 'proxy-pool');
  if (poolHeader !== undefined) targeting.pool = poolHeader;

  let country: string | undefined;
  if (targeting.country !== undefined) {
    country = normalizeCountryCode(targeting.country);
    if (country === undefined) throw new Refusal('country_unknown');
  }
  if (targeting.sessionId !== undefined && !SESSION_ID.test(targeting.sessionId)) throw new Refusal('bad_request');
  if (targeting.pool !== undefined && !POOL_NAME.test(targeting.pool)) throw new Refusal('bad_request');
  const minutes = targeting.sessionMinutes;
  if (minutes !== undefined && (minutes < 1 || minutes > MAX_SESSION_MINUTES)) throw new Refusal('bad_request');
  return { key, source, country, pool: targeting.pool, sessionId: targeting.sessionId, sessionMinutes: minutes };
}
