import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { sha256Hex } from '../../lib/hash.js';
import { isWellFormedApiKey } from '../../lib/secret-format.js';
import { readCredentials, type ClientRequestTarget } from './credentials.js';
import type { KeyGrant } from './grant.js';
import type { KeyCache } from './key-cache.js';
import { Refusal } from '../refusal.js';
import type { RequestTrace } from '../ingress/request-trace.js';

export interface Authorization {
  grant: KeyGrant;
  keyHash: string;
  target: ClientRequestTarget;
}

export interface Authorizer {
  /** The decision for a request: synchronous on a cache hit, a promise on a miss. `trace`: only when tracing is on or debugging is asked for. */
  authorize(headers: IncomingHttpHeaders, socket: Socket, isConnect: boolean, trace?: RequestTrace): Authorization | Promise<Authorization>;
  /** The same for credentials already read (a SOCKS5 login). */
  authorizeTarget(target: ClientRequestTarget, socket: Socket): Authorization | Promise<Authorization>;
}

export interface AuthorizerOptions {
  cache: KeyCache;
  now(): number;
  hasPool(name: string): boolean;
  /** The client's address: the socket's peer, or what a PROXY protocol header said. */
  clientAddressOf(socket: Socket): string;
}

/**
 * Credentials → key hash → cached grant → decision. A keep-alive connection usually sends
 * the same credentials on every request, so the hash is remembered per connection.
 */
const CLIENT_FORBIDDEN = new Refusal('client_forbidden');

export function createAuthorizer({ cache, now, hasPool, clientAddressOf }: AuthorizerOptions): Authorizer {
  const lastHashOf = new WeakMap<Socket, { key: string; hash: string }>();

  function hashOf(key: string, socket: Socket): string {
    const remembered = lastHashOf.get(socket);
    if (remembered !== undefined && remembered.key === key) return remembered.hash;
    // The checksum refuses mistyped and guessed keys before any lookup or hashing.
    if (!isWellFormedApiKey(key)) throw new Refusal('key_invalid');
    const hash = sha256Hex(key);
    lastHashOf.set(socket, { key, hash });
    return hash;
  }

  function decide(grant: KeyGrant | null, keyHash: string, target: ClientRequestTarget, socket: Socket): Authorization {
    if (grant === null) throw new Refusal('key_invalid');
    if (grant.revoked) throw new Refusal('key_revoked');
    if (grant.expiresAt <= now()) throw new Refusal('key_expired');
    if (grant.allowedClients !== null && !grant.allowedClients.allows(clientAddressOf(socket))) throw CLIENT_FORBIDDEN;
    if (target.pool !== undefined && ((grant.pools !== null && !grant.pools.has(target.pool)) || !hasPool(target.pool))) {
      throw new Refusal('pool_forbidden');
    }
    if (target.country !== undefined && grant.countries !== null && !grant.countries.has(target.country)) throw new Refusal('country_forbidden');
    return { grant, keyHash, target };
  }

  function authorizeTarget(target: ClientRequestTarget, socket: Socket): Authorization | Promise<Authorization> {
    const keyHash = hashOf(target.key, socket);
    const grant = cache.lookup(keyHash, clientAddressOf(socket));
    if (grant instanceof Promise) return grant.then((resolved) => decide(resolved, keyHash, target, socket));
    return decide(grant, keyHash, target, socket);
  }

  /** The same steps, each timed and in a span of the request's trace. */
  function authorizeTraced(headers: IncomingHttpHeaders, socket: Socket, isConnect: boolean, trace: RequestTrace): Authorization | Promise<Authorization> {
    const { target, keyHash } = trace.timed('auth.credentials', () => {
      const read = readCredentials(headers, isConnect);
      return { target: read, keyHash: hashOf(read.key, socket) };
    }) as { target: ClientRequestTarget; keyHash: string };
    const grant = trace.timed(
      'auth.key',
      () => {
        const found = cache.lookup(keyHash, clientAddressOf(socket));
        const path = found instanceof Promise ? 'verify' : 'hit';
        trace.facts['portcullis.auth.cache'] = path;
        trace.tracing.activeSpan()?.setAttribute('portcullis.auth.cache', path);
        return found;
      },
      (found): Record<string, string> => (found === null ? {} : { 'portcullis.key_id': found.keyId, 'portcullis.team_id': found.teamId }),
    );
    if (grant instanceof Promise) return grant.then((resolved) => decide(resolved, keyHash, target, socket));
    return decide(grant, keyHash, target, socket);
  }

  return {
    authorize: (headers, socket, isConnect, trace) =>
      trace === undefined ? authorizeTarget(readCredentials(headers, isConnect), socket) : authorizeTraced(headers, socket, isConnect, trace),
    authorizeTarget,
  };
}
