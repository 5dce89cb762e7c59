import { LRUCache } from 'lru-cache';
import type { Exit, Pool } from '../contract/node-api.js';

/**
 * Choosing the exit for a request: pure data and arithmetic, no I/O. Rotating by default
 * (round-robin over the healthy exits that match the key's pools and the country, city,
 * state and ASN asked for); a sticky session pins one exit for its lifetime and moves,
 * once, when that exit fails.
 */

export interface StickySession {
  /** Whose session it is (the key id): sessions are dropped by owner on revocation. */
  owner: string;
  id: string;
  ttlMs: number;
}

export interface ExitRequest {
  /** Pools the key may use; null means every pool. */
  pools: ReadonlySet<string> | null;
  /** A specific pool the client asked for (already checked against the grant). */
  pool?: string | undefined;
  country: string | undefined;
  /** Finer targeting: only exits that carry this city, state or ASN match. */
  city?: string | undefined;
  state?: string | undefined;
  asn?: number | undefined;
  session?: StickySession | undefined;
  /** Exits that already failed for this request. */
  exclude?: ReadonlySet<string> | undefined;
}

export interface ExitSelectorOptions {
  now?: () => number;
  maxSessions?: number;
  /** How long a failed exit is skipped. */
  failureCooldownMs?: number;
}

export interface ExitHealthSummary {
  pool: string;
  country: string;
  exits: number;
  healthy: number;
}

export interface ExitSelector {
  setPools(pools: readonly Pool[]): void;
  hasPool(name: string): boolean;
  /** Whether any pool has any exit: false in a deployment nobody has configured yet. */
  hasExits(): boolean;
  /** The exit to use, or undefined when no exit matches (the caller answers `no_exit`). */
  pickExit(request: ExitRequest): Exit | undefined;
  /** Every exit the request's pools and targeting match, healthy or not (for explain). */
  matchingExits(request: ExitRequest): readonly Exit[];
  markExitFailed(exitId: string): void;
  markExitHealthy(exitId: string): void;
  dropSessions(owner: string): number;
  summary(): ExitHealthSummary[];
  sessionCount(): number;
  close(): void;
}

interface Candidates {
  exits: Exit[];
  next: number;
}

// Candidate lists by country, then city, state and ASN (undefined where not asked for).
type ByAsn = Map<number | undefined, Candidates>;
type ByState = Map<string | undefined, ByAsn>;
type ByCity = Map<string | undefined, ByState>;
type ByCountry = Map<string | undefined, ByCity>;

/** The pools a request may use, and its candidate lists. */
interface Scope {
  poolNames: Iterable<string>;
  byCountry: ByCountry;
}

interface Session {
  exitId: string;
  owner: string;
  expiresAt: number;
}

export function createExitSelector(options: ExitSelectorOptions = {}): ExitSelector {
  const now = options.now ?? Date.now;
  const cooldownMs = options.failureCooldownMs ?? 30_000;
  let pools = new Map<string, Pool>();
  let exitsById = new Map<string, Exit>();
  const failedUntil = new Map<string, number>();
  const sessionsByOwner = new Map<string, Set<string>>();
  const sessions = new LRUCache<string, Session>({
    max: options.maxSessions ?? 100_000,
    dispose: (session, key) => {
      const owned = sessionsByOwner.get(session.owner);
      owned?.delete(key);
      if (owned?.size === 0) sessionsByOwner.delete(session.owner);
    },
  });

  // Candidate lists per (pool set, country, city, state, ASN), built on first use and
  // dropped when pools change. Lookups go through nested maps keyed by the grant's own Set
  // object and the request's own values, so the hot path builds no strings and sorts nothing.
  let everyPool: Scope = { poolNames: [], byCountry: new Map() };
  let singlePool = new Map<string, Scope>();
  let grantedPools = new WeakMap<ReadonlySet<string>, Scope>();

  function matches(exit: Exit, request: ExitRequest): boolean {
    return (
      (request.country === undefined || exit.country === request.country) &&
      (request.city === undefined || exit.city === request.city) &&
      (request.state === undefined || exit.state === request.state) &&
      (request.asn === undefined || exit.asn === request.asn)
    );
  }

  function build(poolNames: Iterable<string>, request: ExitRequest): Candidates {
    const seen = new Set<string>();
    const exits: Exit[] = [];
    for (const name of poolNames) {
      for (const exit of pools.get(name)?.exits ?? []) {
        if (matches(exit, request) && !seen.has(exit.id)) {
          seen.add(exit.id);
          exits.push(exit);
        }
      }
    }
    return { exits, next: 0 };
  }

  function scopeFor(request: ExitRequest): Scope {
    if (request.pool !== undefined) {
      let scope = singlePool.get(request.pool);
      if (scope === undefined) singlePool.set(request.pool, (scope = { poolNames: [request.pool], byCountry: new Map() }));
      return scope;
    }
    if (request.pools === null) return everyPool;
    let scope = grantedPools.get(request.pools);
    if (scope === undefined) grantedPools.set(request.pools, (scope = { poolNames: request.pools, byCountry: new Map() }));
    return scope;
  }

  function candidatesFor(request: ExitRequest): Candidates {
    const scope = scopeFor(request);
    let byCity = scope.byCountry.get(request.country);
    if (byCity === undefined) scope.byCountry.set(request.country, (byCity = new Map()));
    let byState = byCity.get(request.city);
    if (byState === undefined) byCity.set(request.city, (byState = new Map()));
    let byAsn = byState.get(request.state);
    if (byAsn === undefined) byState.set(request.state, (byAsn = new Map()));
    let found = byAsn.get(request.asn);
    if (found === undefined) byAsn.set(request.asn, (found = build(scope.poolNames, request)));
    return found;
  }

  function isUsable(exit: Exit, exclude: ReadonlySet<string> | undefined, at: number): boolean {
    if (exclude?.has(exit.id)) return false;
    const until = failedUntil.get(exit.id);
    return until === undefined || until <= at;
  }

  /**
   * Round-robin over usable exits. When every exit is cooling down after failures, the one
   * that failed longest ago is tried rather than refusing: a cooldown is a guess, a refusal
   * is certain failure.
   */
  function rotate(list: Candidates, exclude: ReadonlySet<string> | undefined, at: number): Exit | undefined {
    const count = list.exits.length;
    for (let i = 0; i < count; i++) {
      const exit = list.exits[(list.next + i) % count]!;
      if (isUsable(exit, exclude, at)) {
        list.next = (list.next + i + 1) % count;
        return exit;
      }
    }
    let fallback: Exit | undefined;
    for (const exit of list.exits) {
      if (exclude?.has(exit.id)) continue;
      if (fallback === undefined || failedUntil.get(exit.id)! < failedUntil.get(fallback.id)!) fallback = exit;
    }
    return fallback;
  }

  function sessionKey(session: StickySession): string {
    return `${session.owner}\0${session.id}`;
  }

  return {
    setPools(next) {
      pools = new Map(next.map((pool) => [pool.name, pool]));
      exitsById = new Map(next.flatMap((pool) => pool.exits.map((exit) => [exit.id, exit] as const)));
      everyPool = { poolNames: [...pools.keys()], byCountry: new Map() };
      singlePool = new Map();
      grantedPools = new WeakMap();
      for (const id of failedUntil.keys()) if (!exitsById.has(id)) failedUntil.delete(id);
    },
    hasPool: (name) => pools.has(name),
    hasExits: () => exitsById.size > 0,
    matchingExits: (request) => candidatesFor(request).exits,
    pickExit(request) {
      const at = now();
      const list = candidatesFor(request);
      if (list.exits.length === 0) return undefined;
      if (request.session === undefined) return rotate(list, request.exclude, at);

      const key = sessionKey(request.session);
      const existing = sessions.get(key);
      if (existing !== undefined && existing.expiresAt > at) {
        const pinned = exitsById.get(existing.exitId);
        if (pinned !== undefined && list.exits.includes(pinned) && isUsable(pinned, request.exclude, at)) return pinned;
      }
      const exit = rotate(list, request.exclude, at);
      if (exit === undefined) return undefined;
      const expiresAt = existing !== undefined && existing.expiresAt > at ? existing.expiresAt : at + request.session.ttlMs;
      sessions.set(key, { exitId: exit.id, owner: request.session.owner, expiresAt });
      let owned = sessionsByOwner.get(request.session.owner);
      if (owned === undefined) sessionsByOwner.set(request.session.owner, (owned = new Set()));
      owned.add(key);
      return exit;
    },
    markExitFailed(exitId) {
      failedUntil.set(exitId, now() + cooldownMs);
    },
    markExitHealthy(exitId) {
      failedUntil.delete(exitId);
    },
    dropSessions(owner) {
      const owned = sessionsByOwner.get(owner);
      if (owned === undefined) return 0;
      const keys = [...owned];
      for (const key of keys) sessions.delete(key);
      sessionsByOwner.delete(owner);
      return keys.length;
    },
    summary() {
      const at = now();
      const out: ExitHealthSummary[] = [];
      for (const pool of pools.values()) {
        const byCountry = new Map<string, ExitHealthSummary>();
        for (const exit of pool.exits) {
          let entry = byCountry.get(exit.country);
          if (entry === undefined) byCountry.set(exit.country, (entry = { pool: pool.name, country: exit.country, exits: 0, healthy: 0 }));
          entry.exits++;
          if (isUsable(exit, undefined, at)) entry.healthy++;
        }
        out.push(...byCountry.values());
      }
      return out;
    },
    sessionCount: () => sessions.size,
    close() {
      sessions.clear();
      sessionsByOwner.clear();
      failedUntil.clear();
      everyPool.byCountry.clear();
      singlePool.clear();
    },
  };
}
