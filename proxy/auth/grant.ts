import type { ConcurrencyLimit, RateLimit, VerifiedKey } from '../../contract/node-api.js';
import { createClientAllowlist, type ClientAllowlist } from '../../lib/cidr.js';

/** What a node knows about a key: its grants, never its secret. */
export interface KeyGrant {
  keyId: string;
  teamId: string;
  revoked: boolean;
  /** Granted pools; null means every pool. */
  pools: ReadonlySet<string> | null;
  /** Granted countries; null means every country. */
  countries: ReadonlySet<string> | null;
  /** Epoch ms; Infinity when the key never expires. */
  expiresAt: number;
  rateLimit: RateLimit | null;
  concurrency: ConcurrencyLimit | null;
  /** The client addresses the key may be used from; null means any. */
  allowedClients: ClientAllowlist | null;
  /** The key's or its team's monthly byte quota was used up when this was verified. */
  overQuota: boolean;
  /** Its team lets it ask for its decision's timings and path (`Proxy-Debug: 1`). */
  debug: boolean;
  /** When the control plane last confirmed this (epoch ms). */
  verifiedAt: number;
}

/** Past this many distinct shapes a table starts afresh: entries already made keep working, unshared. */
const MAX_SHAPES = 50_000;

/**
 * Turns a verify answer into the grant a node caches. A node may cache a million keys, and
 * most keys of a team share their pools, countries and limits: each distinct list and limit
 * is kept once and shared (which also lets exit selection cache its candidates per shared
 * pool set), and team ids are kept once per team.
 */
export interface GrantShapes {
  toGrant(key: VerifiedKey, verifiedAt: number): KeyGrant;
  clear(): void;
}

export function createGrantShapes(): GrantShapes {
  const lists = new Map<string, ReadonlySet<string>>();
  const limits = new Map<string, RateLimit | ConcurrencyLimit>();
  const teams = new Map<string, string>();
  const allowlists = new Map<string, ClientAllowlist>();

  function shared<T>(table: Map<string, T>, id: string, make: () => T): T {
    let value = table.get(id);
    if (value === undefined) {
      if (table.size >= MAX_SHAPES) table.clear();
      table.set(id, (value = make()));
    }
    return value;
  }

  const setOf = (values: string[]) => (values.length === 0 ? null : shared(lists, values.join('\0'), () => new Set(values)));
  const rateOf = (limit: RateLimit | null) => (limit === null ? null : (shared(limits, `r${limit.requestsPerSecond}/${limit.burst}`, () => limit) as RateLimit));
  // Compiled once per distinct list, not per request or per key.
  const allowlistOf = (cidrs: string[] | undefined) =>
    cidrs === undefined || cidrs.length === 0 ? null : shared(allowlists, cidrs.join(' '), () => createClientAllowlist(cidrs));
  const concurrencyOf = (limit: ConcurrencyLimit | null) =>
    limit === null ? null : (shared(limits, `c${limit.perNode}/${limit.perRegion}`, () => limit) as ConcurrencyLimit);

  return {
    toGrant(key, verifiedAt) {
      return {
        keyId: key.id,
        teamId: shared(teams, key.teamId, () => key.teamId),
        revoked: key.status === 'revoked',
        pools: setOf(key.pools),
        countries: setOf(key.countries),
        expiresAt: key.expiresAt === null ? Infinity : Date.parse(key.expiresAt),
        rateLimit: rateOf(key.rateLimit),
        concurrency: concurrencyOf(key.concurrency),
        allowedClients: allowlistOf(key.allowedClientCidrs),
        overQuota: key.overQuota,
        debug: key.debug === true,
        verifiedAt,
      };
    },
    clear() {
      lists.clear();
      limits.clear();
      teams.clear();
      allowlists.clear();
    },
  };
}
