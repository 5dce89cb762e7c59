import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { sha256Hex } from '../../lib/hash.js';
import { isWellFormedApiKey } from '../../lib/secret-format.js';
import { readCredentials, type ClientRequestTarget } from '../../access/credentials.js';
import { decideGrant } from '../../access/decide.js';
import type { KeyGrant } from '../../access/grant.js';
import { Refusal } from '../../access/refusal.js';
import type { KeyCache } from './key-cache.js';
import type { RequestTrace } from '../ingress/request-trace.js';
import type { TeamLockdowns } from './team-lockdowns.js';

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
  lockdowns: TeamLockdowns;
  now(): number;
  hasPool(name: string): boolean;
  /** The client's address: the socket's peer, or what a PROXY protocol header said. */
  clientAddressOf(socket: Socket): string;
}

/**
 * Credentials → key hash → cached grant → decision. A keep-alive connection usually sends
 * the same credentials on every request, so the hash is remembered per connection.
 */
export function createAuthorizer({ cache, lockdowns, now, hasPool, clientAddressOf }: AuthorizerOptions): Authorizer {
  const lastHashOf = new WeakMap<Socket, { key: string; hash: string }>();
  const context = { now, hasPool, lockdownCovers: (grant: KeyGrant) => lockdowns.covers(grant) };

  /**
   * `remember`: for a connection that may send more requests (plain HTTP). A tunnel or a
   * SOCKS5 login asks once per connection, and a weak map entry per connection is garbage
   * collector work for nothing.
   */
  function hashOf(key: string, socket: Socket, remember: boolean): string {
    const remembered = remember ? lastHashOf.get(socket) : undefined;
    if (remembered !== undefined && remembered.key === key) return remembered.hash;
    // The checksum refuses mistyped and guessed keys before any lookup or hashing.
    if (!isWellFormedApiKey(key)) throw new Refusal('key_invalid');
    const hash = sha256Hex(key);
    if (remember) lastHashOf.set(socket, { key, hash });
    return hash;
  }

  function decide(grant: KeyGrant | null, keyHash: string, target: ClientRequestTarget, socket: Socket): Authorization {
    return { grant: decideGrant(grant, target, clientAddressOf(socket), context), keyHash, target };
  }

  function authorizeTarget(target: ClientRequestTarget, socket: Socket, remember = false): Authorization | Promise<Authorization> {
    const keyHash = hashOf(target.key, socket, remember);
    const grant = cache.lookup(keyHash, clientAddressOf(socket));
    if (grant instanceof Promise) return grant.then((resolved) => decide(resolved, keyHash, target, socket));
    return decide(grant, keyHash, target, socket);
  }

  /** The same steps, each timed and in a span of the request's trace. */
  function authorizeTraced(headers: IncomingHttpHeaders, socket: Socket, isConnect: boolean, trace: RequestTrace): Authorization | Promise<Authorization> {
    const { target, keyHash } = trace.timed('auth.credentials', () => {
      const read = readCredentials(headers, isConnect);
      return { target: read, keyHash: hashOf(read.key, socket, !isConnect) };
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
      trace === undefined ? authorizeTarget(readCredentials(headers, isConnect), socket, !isConnect) : authorizeTraced(headers, socket, isConnect, trace),
    authorizeTarget,
  };
}
