import type { ExitRequest } from '../geo/exit-selection.js';
import type { ClientRequestTarget } from './credentials.js';
import type { KeyGrant } from './grant.js';
import { Refusal } from './refusal.js';

/**
 * The decisions a node takes about a request once its credentials are read, as pure
 * functions: the node runs them on every request, and the control plane's explain runs
 * the same ones on the same inputs, so the two cannot disagree.
 */

export interface GrantContext {
  now(): number;
  /** Whether the pool exists (a key may name a pool that was since deleted). */
  hasPool(name: string): boolean;
  /** Whether a lockdown the node has heard of covers the key (see TeamLockdowns). */
  lockdownCovers(grant: KeyGrant): boolean;
}

const CLIENT_FORBIDDEN = new Refusal('client_forbidden');

/**
 * The key's standing and grants against what the request asks for, from `clientAddress`:
 * throws the Refusal a node answers with, in the order a node checks them. A node always
 * knows the client's address; explain may not, and then skips the allowlist.
 */
export function decideGrant(grant: KeyGrant | null, target: ClientRequestTarget, clientAddress: string | undefined, context: GrantContext): KeyGrant {
  if (grant === null) throw new Refusal('key_invalid');
  // Before `revoked`: the control plane also answers a locked key as revoked, for nodes
  // that predate lockdowns.
  if (grant.lockedDown || context.lockdownCovers(grant)) throw new Refusal('team_locked');
  if (grant.revoked) throw new Refusal('key_revoked');
  if (grant.expiresAt <= context.now()) throw new Refusal('key_expired');
  if (grant.allowedClients !== null && clientAddress !== undefined && !grant.allowedClients.allows(clientAddress)) throw CLIENT_FORBIDDEN;
  if (target.pool !== undefined && ((grant.pools !== null && !grant.pools.has(target.pool)) || !context.hasPool(target.pool))) {
    throw new Refusal('pool_forbidden');
  }
  if (target.country !== undefined && grant.countries !== null && !grant.countries.has(target.country)) throw new Refusal('country_forbidden');
  return grant;
}

/** What exit selection is asked for a request: the key's pools and the targeting. */
export function exitRequestFor(grant: KeyGrant, target: ClientRequestTarget, defaultSessionMinutes: number, exclude: ReadonlySet<string>): ExitRequest {
  return {
    pools: grant.pools,
    pool: target.pool,
    country: target.country,
    city: target.city,
    state: target.state,
    asn: target.asn,
    exclude,
    session:
      target.sessionId === undefined
        ? undefined
        : { owner: grant.keyId, id: target.sessionId, ttlMs: (target.sessionMinutes ?? defaultSessionMinutes) * 60_000 },
  };
}

/** The `no_exit` refusal, naming what was asked for so a client can tell a typo from an exit that is down. */
export function noExitRefusal(request: ExitRequest, hasExits: boolean): Refusal {
  return new Refusal('no_exit', 5, undefined, noExitHint(request, hasExits));
}

function noExitHint(request: ExitRequest, hasExits: boolean): string {
  if (!hasExits) return 'No pool of exits is configured on this deployment yet: an admin creates one with POST /v1/pools.';
  const asked: string[] = [];
  if (request.pool !== undefined) asked.push(`pool ${request.pool}`);
  if (request.country !== undefined) asked.push(`country ${request.country}`);
  if (request.city !== undefined) asked.push(`city ${request.city}`);
  if (request.state !== undefined) asked.push(`state ${request.state}`);
  if (request.asn !== undefined) asked.push(`asn ${request.asn}`);
  if (asked.length === 0) return 'No exit in the pools this key may use. Ask your admin to grant a pool with exits.';
  return `No exit for ${asked.join(', ')} in the pools this key may use. Retry later or target less narrowly.`;
}

/** A key verified as over its or its team's monthly quota stays so until that month ends. */
export function isOverQuota(grant: KeyGrant, now: number): boolean {
  return grant.overQuota && now < startOfNextMonth(grant.verifiedAt);
}

export function quotaRefusal(now: number): Refusal {
  return new Refusal('quota_exceeded', (startOfNextMonth(now) - now) / 1000);
}

/** The start of the next calendar month (UTC) after `now`: when a used-up monthly quota resets. */
export function startOfNextMonth(now: number): number {
  const date = new Date(now);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
}
