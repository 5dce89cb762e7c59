import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { sha256Hex } from '../../lib/hash.js';
import { isWellFormedApiKey } from '../../lib/secret-format.js';
import { readCredentials, type ClientRequestTarget } from '../../access/credentials.js';
import type { KeyGrant } from '../../access/grant.js';
import type { KeyCache } from './key-cache.js';
import type { TeamLockdowns } from './team-lockdowns.js';
import { Refusal } from '../../access/refusal.js';
import { decideGrant } from '../../access/decide.js';

export interface Authorization {
  grant: KeyGrant;
  keyHash: string;
  target: ClientRequestTarget;
}

export interface Authorizer {
  /** The decision for a request: synchronous on a cache hit, a promise on a miss. */
  authorize(headers: IncomingHttpHeaders, socket: Socket, isConnect: boolean): Authorization | Promise<Authorization>;
}

export interface AuthorizerOptions {
  cache: KeyCache;
  lockdowns: TeamLockdowns;
  now(): number;
  hasPool(name: string): boolean;
}

/**
 * Credentials → key hash → cached grant → decision. A keep-alive connection usually sends
 * the same credentials on every request, so the hash is remembered per connection.
 */
export function createAuthorizer({ cache, lockdowns, now, hasPool }: AuthorizerOptions): Authorizer {
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

  const context = { now, hasPool, lockdownCovers: (grant: KeyGrant) => lockdowns.covers(grant) };
  function decide(grant: KeyGrant | null, keyHash: string, target: ClientRequestTarget): Authorization {
    return { grant: decideGrant(grant, target, context), keyHash, target };
  }

  return {
    authorize(headers, socket, isConnect) {
      const target = readCredentials(headers, isConnect);
      const keyHash = hashOf(target.key, socket);
      const grant = cache.lookup(keyHash, socket);
      if (grant instanceof Promise) return grant.then((resolved) => decide(resolved, keyHash, target));
      return decide(grant, keyHash, target);
    },
  };
}
