import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { sha256Hex } from '../../lib/hash.js';
import { isWellFormedApiKey } from '../../lib/secret-format.js';
import { readCredentials, type ClientRequestTarget } from './credentials.js';
import type { KeyGrant } from './grant.js';
import type { KeyCache } from './key-cache.js';
import type { TeamLockdowns } from './team-lockdowns.js';
import { Refusal } from '../refusal.js';

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

  function decide(grant: KeyGrant | null, keyHash: string, target: ClientRequestTarget): Authorization {
    if (grant === null) throw new Refusal('key_invalid');
    // Before `revoked`: the control plane also answers a locked key as revoked, for nodes
    // that predate lockdowns.
    if (grant.lockedDown || lockdowns.covers(grant)) throw new Refusal('team_locked');
    if (grant.revoked) throw new Refusal('key_revoked');
    if (grant.expiresAt <= now()) throw new Refusal('key_expired');
    if (target.pool !== undefined && ((grant.pools !== null && !grant.pools.has(target.pool)) || !hasPool(target.pool))) {
      throw new Refusal('pool_forbidden');
    }
    if (target.country !== undefined && grant.countries !== null && !grant.countries.has(target.country)) throw new Refusal('country_forbidden');
    return { grant, keyHash, target };
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
