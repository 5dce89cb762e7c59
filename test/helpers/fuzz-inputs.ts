/**
 * Seeded hostile proxy requests for the auth fuzz: mangled credentials (schemes, base64,
 * keys with one character changed, keys that exist but are revoked or expired, made-up keys
 * with a valid checksum), usernames full of targeting parameters, targeting headers, and
 * request lines. Every request points at `origin`, so anything proxied would show there.
 */
import { generateApiKey } from '../../lib/secret-format.js';

export interface FuzzInput {
  method: string;
  bytes: string;
}

export interface FuzzBases {
  /** host:port of an origin that must see nothing. */
  origin: string;
  /** Keys that exist but must be refused (revoked, expired). */
  refusedKeys: string[];
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function createFuzzInputs(seed: number, { origin, refusedKeys }: FuzzBases): () => FuzzInput {
  const random = seededRandom(seed);
  const int = (below: number) => Math.floor(random() * below);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => random() < p;
  // Printable ASCII, then anything a header value may carry on the wire (no CR, LF or NUL).
  const text = (length: number, wide = false) =>
    Array.from({ length }, () => String.fromCharCode(wide ? pick([9, 32 + int(95), 128 + int(128)]) : 32 + int(95))).join('');
  const token = (length: number) => Array.from({ length }, () => pick([...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~'])).join('');

  function mutate(value: string): string {
    const at = int(value.length + 1);
    switch (int(5)) {
      case 0:
        return value.slice(0, at) + text(1) + value.slice(at + 1);
      case 1:
        return value.slice(0, at) + value.slice(at + 1);
      case 2:
        return value.slice(0, at) + text(1 + int(3)) + value.slice(at);
      case 3:
        return value.toUpperCase();
      default:
        return value.repeat(1 + int(3));
    }
  }

  function key(): string {
    switch (int(6)) {
      case 0:
        return pick(refusedKeys);
      case 1:
        return mutate(pick(refusedKeys));
      case 2:
        return generateApiKey();
      case 3:
        return `sk_live_${token(int(60))}`;
      case 4:
        return text(int(2_000), true);
      default:
        return token(int(40));
    }
  }

  function username(): string {
    const parts = [pick(['user', 'team', 'c', '', token(8)])];
    for (let i = int(6); i > 0; i--) {
      const name = pick(['country', 'session', 'sesstime', 'pool', 'city', 'state', 'asn', token(5), '']);
      const value = pick(['de', 'US', 'xx', 'UK', '0', '99999', '-1', 'abc123', 'bad id!', 'residential', token(int(80)), text(int(10), true), '']);
      parts.push(chance(0.1) ? name.toUpperCase() : name, value);
    }
    return parts.join(pick(['-', '-', '-', '--', '_', ':']));
  }

  function credentials(): string[] {
    const headers: string[] = [];
    const secret = key();
    switch (int(6)) {
      case 0:
        headers.push(`Proxy-Authorization: Basic ${Buffer.from(`${username()}:${secret}`, 'latin1').toString('base64')}`);
        break;
      case 1:
        headers.push(`Proxy-Authorization: ${pick(['Bearer', 'bearer', 'BEARER', 'Basic', 'Digest', '', 'Bearer  '])} ${secret}`);
        break;
      case 2:
        headers.push(`Proxy-Authorization: Basic ${mutate(Buffer.from(`${username()}:${secret}`).toString('base64'))}`);
        break;
      case 3:
        headers.push(`Authorization: Bearer ${secret}`);
        break;
      case 4:
        headers.push(`Proxy-Authorization: Basic ${Buffer.from(chance(0.5) ? secret : `${secret}:`).toString('base64')}`, `Proxy-Authorization: Bearer ${key()}`);
        break;
      default:
        break;
    }
    return headers;
  }

  function targeting(): string[] {
    const headers: string[] = [];
    for (const name of ['Proxy-Country', 'Proxy-Session', 'Proxy-Pool']) {
      if (chance(0.3)) headers.push(`${chance(0.1) ? name.toUpperCase() : name}: ${pick(['DE', 'uk', 'ZZ', '', 'residential', 'abc', '../..', text(int(100), true)])}`);
    }
    return headers;
  }

  /** Mostly well-formed, so that most requests reach the credential checks. */
  function requestLine(): { method: string; line: string } {
    const method = chance(0.8) ? pick(['GET', 'GET', 'CONNECT', 'POST', 'HEAD']) : pick(['PUT', 'OPTIONS', 'DELETE', 'PATCH', token(5)]);
    const valid = chance(0.8);
    const target =
      method === 'CONNECT'
        ? valid
          ? origin
          : pick([`${origin.split(':')[0]}:${int(70_000)}`, token(20), `[::1]:${origin.split(':')[1]}`, '', `${origin}/path`])
        : valid
          ? pick([`http://${origin}/`, `http://${origin}/${token(int(30))}?${token(int(20))}`])
          : pick([`https://${origin}/`, '/', '*', `http://${token(10)}@${origin}/`, `http://${origin}:${int(99_999)}/`, `http:/${origin}`, `http://${origin}/${text(int(3_000)).replace(/ /g, '%20')}`]);
    const version = chance(0.9) ? 'HTTP/1.1' : pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.x', '']);
    return { method, line: `${method} ${target} ${version}`.trimEnd() };
  }

  return () => {
    const { method, line } = requestLine();
    const headers = [`Host: ${origin}`, ...credentials(), ...targeting()];
    if (chance(0.05)) headers.push('Expect: 100-continue', 'Content-Length: 4');
    if (chance(0.05)) headers.push(`X-Filler: ${'f'.repeat(int(20_000))}`);
    if (chance(0.3)) headers.sort(() => random() - 0.5);
    return { method, bytes: `${line}\r\n${headers.join('\r\n')}\r\n\r\n` };
  };
}
