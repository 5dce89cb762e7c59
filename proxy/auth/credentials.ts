import type { IncomingHttpHeaders } from 'node:http';
import { CITY_PATTERN, MAX_ASN, STATE_PATTERN } from '../../contract/node-api.js';
import { normalizeCountryCode } from '../../geo/countries.js';
import { quoted, Refusal, TARGETING_PARTS } from '../refusal.js';

/**
 * What a client asked for, read from its credentials and targeting headers (DESIGN
 * "Credentials a proxy node accepts").
 */
export interface ClientRequestTarget {
  key: string;
  /** Where the key came from; `authorization` must be stripped before forwarding. */
  source: 'proxy-authorization' | 'authorization';
  country: string | undefined;
  city: string | undefined;
  state: string | undefined;
  asn: number | undefined;
  pool: string | undefined;
  sessionId: string | undefined;
  sessionMinutes: number | undefined;
}

const MAX_CREDENTIAL_LENGTH = 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const SESSION_ID = /^[A-Za-z0-9_]{1,64}$/;
const POOL_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const CITY = new RegExp(CITY_PATTERN);
const STATE = new RegExp(STATE_PATTERN);
const ASN = /^[1-9][0-9]{0,9}$/;
const MINUTES = /^[0-9]{1,5}$/;
const MAX_SESSION_MINUTES = 24 * 60;

/** Targeting as given, before it is checked: from the username, then the headers over it. */
type Parameter = 'country' | 'city' | 'state' | 'asn' | 'session' | 'sesstime' | 'pool';
type Targeting = Record<Parameter, string | undefined>;

const PARAMETERS: ReadonlySet<string> = new Set<Parameter>(['country', 'city', 'state', 'asn', 'session', 'sesstime', 'pool']);

function parameterName(word: string): Parameter | undefined {
  switch (word) {
    case 'country':
    case 'city':
    case 'state':
    case 'asn':
    case 'session':
    case 'sesstime':
    case 'pool':
      return word;
  }
  // Names are case-insensitive; most label words are turned away by their length alone.
  if (word.length < 3 || word.length > 8) return undefined;
  const name = word.toLowerCase();
  return name !== word && PARAMETERS.has(name) ? (name as Parameter) : undefined;
}

const badRequest = (hint: string) => new Refusal('bad_request', undefined, undefined, hint);

/**
 * Reads the username's targeting, as commercial providers write it:
 * `<label>-<parameter>-<value>-<parameter>-<value>…`. The label is every word before the
 * first parameter name (`team`, `user-acme`); it is not read, so a customer may put any
 * name there. From the first parameter on the words go in pairs, and a name this node does
 * not know is refused, never skipped: `team-country-de-zip-10115` answers
 * `targeting_unsupported` naming `zip`.
 */
function parseUsername(username: string, into: Targeting): void {
  // A label alone, or the key itself sent as the username.
  if (!username.includes('-')) return;
  const words = username.split('-');
  let i = 0;
  while (i < words.length && parameterName(words[i]!) === undefined) i++;
  for (; i < words.length; i += 2) {
    const word = words[i]!;
    const name = parameterName(word);
    if (name === undefined) {
      if (word === '') throw badRequest('The username has an empty targeting part: check for a doubled or trailing "-".');
      throw new Refusal('targeting_unsupported', undefined, undefined, `Unknown targeting part ${quoted(word)} in the username. Supported: ${TARGETING_PARTS}.`);
    }
    const value = words[i + 1];
    if (value === undefined || value === '') throw badRequest(`The targeting part "${name}" needs a value: ...-${name}-<value>.`);
    // One case per field: a store by a computed name costs more on the hot path.
    switch (name) {
      case 'country':
        into.country = once(name, into.country, value);
        break;
      case 'city':
        into.city = once(name, into.city, value);
        break;
      case 'state':
        into.state = once(name, into.state, value);
        break;
      case 'asn':
        into.asn = once(name, into.asn, value);
        break;
      case 'session':
        into.session = once(name, into.session, value);
        break;
      case 'sesstime':
        into.sesstime = once(name, into.sesstime, value);
        break;
      case 'pool':
        into.pool = once(name, into.pool, value);
        break;
    }
  }
}

function once(name: Parameter, previous: string | undefined, value: string): string {
  if (previous !== undefined) throw badRequest(`The targeting part "${name}" is given twice in the username.`);
  return value;
}

/** The key of a username and password pair, with the username's targeting read into `targeting`. */
function fromLogin(username: string, password: string, targeting: Targeting): string {
  parseUsername(username, targeting);
  // `curl -U KEY:` sends the key as the username with an empty password.
  return password === '' ? username : password;
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
  return fromLogin(decoded.slice(0, colon), decoded.slice(colon + 1), targeting);
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function checkedCountry(value: string): string {
  const country = normalizeCountryCode(value);
  if (country === undefined) throw new Refusal('country_unknown', undefined, undefined, `Unknown country ${quoted(value)}. Use an ISO 3166-1 alpha-2 code such as DE, US or UK.`);
  return country;
}

function checkedSlug(name: 'city' | 'state', value: string, pattern: RegExp, example: string): string {
  const slug = value.toLowerCase();
  if (!pattern.test(slug)) throw badRequest(`The ${name} ${quoted(value)} is malformed: write it like ${example}.`);
  return slug;
}

function checkedAsn(value: string): number {
  const asn = Number(value);
  if (!ASN.test(value) || asn > MAX_ASN) throw badRequest(`The asn ${quoted(value)} is malformed: write the number alone, such as 3320.`);
  return asn;
}

/**
 * Extracts the key and targeting from a request. Throws a Refusal: `auth_required` with no
 * credentials, `key_invalid` for credentials that cannot be read, `targeting_unsupported`
 * for a targeting part this node does not know, `bad_request` and `country_unknown` for
 * malformed targeting.
 */
export function readCredentials(headers: IncomingHttpHeaders, isConnect: boolean): ClientRequestTarget {
  const targeting = noTargeting();
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
  targeting.country = headerValue(headers, 'proxy-country') ?? targeting.country;
  targeting.city = headerValue(headers, 'proxy-city') ?? targeting.city;
  targeting.state = headerValue(headers, 'proxy-state') ?? targeting.state;
  targeting.asn = headerValue(headers, 'proxy-asn') ?? targeting.asn;
  targeting.session = headerValue(headers, 'proxy-session') ?? targeting.session;
  targeting.sesstime = headerValue(headers, 'proxy-sesstime') ?? targeting.sesstime;
  targeting.pool = headerValue(headers, 'proxy-pool') ?? targeting.pool;
  return checkedTarget(key, source, targeting);
}

/**
 * A SOCKS5 login (RFC 1929): the same username, targeting and key rules as a Basic
 * Proxy-Authorization, without headers. Throws the same Refusals.
 */
export function readLogin(username: string, password: string): ClientRequestTarget {
  if (username.length + password.length > MAX_CREDENTIAL_LENGTH) throw new Refusal('key_invalid');
  const targeting = noTargeting();
  return checkedTarget(fromLogin(username, password, targeting), 'proxy-authorization', targeting);
}

// Every field from the start: one object shape for every request.
const noTargeting = (): Targeting => ({ country: undefined, city: undefined, state: undefined, asn: undefined, session: undefined, sesstime: undefined, pool: undefined });

function checkedTarget(key: string, source: ClientRequestTarget['source'], targeting: Targeting): ClientRequestTarget {
  const { session, sesstime, pool } = targeting;
  if (session !== undefined && !SESSION_ID.test(session)) throw badRequest(`The session id ${quoted(session)} is malformed: use up to 64 letters, digits or _.`);
  if (pool !== undefined && !POOL_NAME.test(pool)) throw badRequest(`The pool name ${quoted(pool)} is malformed.`);
  let minutes: number | undefined;
  if (sesstime !== undefined) {
    minutes = Number(sesstime);
    if (!MINUTES.test(sesstime) || minutes < 1 || minutes > MAX_SESSION_MINUTES) throw badRequest(`sesstime is in minutes, from 1 to ${MAX_SESSION_MINUTES}.`);
  }
  return {
    key,
    source,
    country: targeting.country === undefined ? undefined : checkedCountry(targeting.country),
    city: targeting.city === undefined ? undefined : checkedSlug('city', targeting.city, CITY, 'berlin or new_york'),
    state: targeting.state === undefined ? undefined : checkedSlug('state', targeting.state, STATE, 'ca or nsw'),
    asn: targeting.asn === undefined ? undefined : checkedAsn(targeting.asn),
    pool,
    sessionId: session,
    sessionMinutes: minutes,
  };
}
