import { LRUCache } from 'lru-cache';
import { Refusal } from '../refusal.js';
import type { RevocationEvent } from '../../contract/feed.js';
import type { VerifyResult } from '../sync/node-api-client.js';
import { createGrantShapes, type KeyGrant } from './grant.js';

export interface KeyCacheEvents {
  hit(): void;
  miss(): void;
  coalesced(): void;
  negativeHit(): void;
  verified(seconds: number, outcome: 'ok' | 'error'): void;
  failedOpen(keyId: string): void;
}

export interface KeyCacheOptions {
  verify(hashHex: string): Promise<VerifyResult>;
  now(): number;
  maxEntries: number;
  maxNegativeEntries: number;
  negativeTtlMs: number;
  /**
   * Unknown keys the control plane may be asked about per second (burst: one second's worth).
   * Only answers of "unknown" use this budget, so real keys are never slowed by it; once a
   * flood of made-up keys has used it up, keys not in the cache get 503 until it refills.
   */
  unknownPerSecond: number;
  /**
   * The same budget for each client address: one source flooding made-up keys uses up its
   * own budget (and runs into debt for the lookups it had in flight), not everyone's.
   */
  unknownPerSecondPerClient: number;
  /** Control plane lookups in flight at once; more wait for none but get 503. */
  maxVerifyInFlight: number;
  /**
   * How old a cached decision may be and still be used without asking the control
   * plane: the cache TTL while the revocation feed is healthy, the staleness bound when
   * it has gone quiet.
   */
  trustWindowMs(): number;
  /** Use a cached decision when the control plane cannot be reached (off by default). */
  failOpen: boolean;
  /** The feed epoch the node is in: answers of another epoch are not trusted. */
  epoch(): string | undefined;
  /** Brings the node into the node API's epoch (see RevocationFeed.resync). */
  resync(): Promise<void>;
  events: KeyCacheEvents;
}

export interface KeyCache {
  /**
   * The grant, null for an unknown key, or a promise when the control plane must be asked.
   * `clientAddress` spends its own budget of unknown keys when the control plane is asked.
   */
  lookup(hashHex: string, clientAddress: string): KeyGrant | null | Promise<KeyGrant | null>;
  /** Applies a feed event about one key: forget it, and remember the event against in-flight verifies. */
  applyEvent(event: Pick<RevocationEvent, 'kind' | 'seq'> & { keyHash: string }): void;
  /** Forgets every cached key of a team (its quota changed). */
  forgetTeam(teamId: string): void;
  /** Forgets every cached decision as of feed event `seq`; answers older than it are asked again. */
  forgetAll(seq: number): void;
  size(): number;
  /** Forgets every decision: grants, unknown keys and tombstones (a new epoch, or shutdown). */
  clear(): void;
}

interface Tombstone {
  seq: number;
  kind: RevocationEvent['kind'];
}

const TOMBSTONE_TTL_MS = 60_000;
const MAX_STALE_RETRIES = 3;
const MAX_TRACKED_CLIENTS = 10_000;
/** How far into debt a client can run, in seconds of its budget. */
const MAX_CLIENT_DEBT_SECONDS = 60;

interface TokenBucket {
  tokens: number;
  at: number;
}

export function createKeyCache(options: KeyCacheOptions): KeyCache {
  const { now, events } = options;
  const grants = new LRUCache<string, KeyGrant>({ max: options.maxEntries });
  const shapes = createGrantShapes();
  const unknown = new LRUCache<string, true>({ max: options.maxNegativeEntries, ttl: options.negativeTtlMs, ttlAutopurge: false });
  // A verify answer older than an event we applied must not put the key back.
  const tombstones = new LRUCache<string, Tombstone>({ max: Math.max(10_000, options.maxNegativeEntries), ttl: TOMBSTONE_TTL_MS });
  const inFlight = new Map<string, Promise<KeyGrant | null>>();
  // Verify answers read before this seq predate a change to every key (`forgetAll`).
  let forgottenAtSeq = -1;
  // Bumped by clear(): answers checked against an earlier generation are not cached.
  let generation = 0;
  // Budgets for unknown keys: the node's, and one per client address (in the LRU).
  const nodeBudget: TokenBucket = { tokens: options.unknownPerSecond, at: now() };
  const clientBudgets = new LRUCache<string, TokenBucket>({ max: MAX_TRACKED_CLIENTS });

  function refilled(bucket: TokenBucket, perSecond: number): TokenBucket {
    const current = now();
    bucket.tokens = Math.min(perSecond, bucket.tokens + ((current - bucket.at) / 1000) * perSecond);
    bucket.at = current;
    return bucket;
  }

  function clientBudget(client: string): TokenBucket {
    let bucket = clientBudgets.get(client);
    if (bucket === undefined) clientBudgets.set(client, (bucket = { tokens: options.unknownPerSecondPerClient, at: now() }));
    return refilled(bucket, options.unknownPerSecondPerClient);
  }

  function mayAskAboutNewKey(client: string): boolean {
    return (
      clientBudget(client).tokens >= 1 && refilled(nodeBudget, options.unknownPerSecond).tokens >= 1 && inFlight.size < options.maxVerifyInFlight
    );
  }

  function spendOnUnknownKey(client: string): void {
    refilled(nodeBudget, options.unknownPerSecond).tokens -= 1;
    const bucket = clientBudget(client);
    bucket.tokens = Math.max(-MAX_CLIENT_DEBT_SECONDS * options.unknownPerSecondPerClient, bucket.tokens - 1);
  }

  /** The answer, and the generation of the cache it was checked against. */
  async function verifyFresh(hashHex: string): Promise<{ grant: KeyGrant | null; generation: number }> {
    for (let attempt = 0; ; attempt++) {
      const started = now();
      let result: VerifyResult;
      try {
        result = await options.verify(hashHex);
      } catch (error) {
        events.verified((now() - started) / 1000, 'error');
        throw error;
      }
      events.verified((now() - started) / 1000, 'ok');
      if (result.epoch !== options.epoch()) {
        // Seqs of another epoch cannot be held against our tombstones: first get into the
        // control plane's epoch (forgetting the cache if it is new), then ask again.
        if (attempt >= MAX_STALE_RETRIES) throw new Error('control plane answers in another feed epoch than the node');
        await options.resync();
        continue;
      }
      const checked = (grant: KeyGrant | null) => ({ grant, generation });
      const tombstone = tombstones.get(hashHex);
      if (forgottenAtSeq <= result.seq && (tombstone === undefined || tombstone.seq <= result.seq)) {
        if (result.key === null) return checked(null);
        return checked(shapes.toGrant(result.key, started));
      }
      // The answer predates an event we already applied: a revoked or rotated-away secret
      // stays refused; after any other change, ask again for an answer that includes it.
      if (tombstone !== undefined && tombstone.seq > result.seq && (tombstone.kind === 'key.revoked' || tombstone.kind === 'key.rotated')) {
        if (result.key === null) return checked(null);
        return checked({ ...shapes.toGrant(result.key, started), revoked: true });
      }
      if (attempt >= MAX_STALE_RETRIES) throw new Error('control plane answers lag behind the revocation feed');
    }
  }

  function refresh(hashHex: string, cached: KeyGrant | undefined, client: string): Promise<KeyGrant | null> {
    const pending = inFlight.get(hashHex);
    if (pending !== undefined) {
      events.coalesced();
      return pending;
    }
    if (cached === undefined && !mayAskAboutNewKey(client)) {
      return Promise.reject(new Refusal('auth_unavailable', 1));
    }
    events.miss();
    const settled = () => {
      if (inFlight.get(hashHex) === promise) inFlight.delete(hashHex);
    };
    const promise: Promise<KeyGrant | null> = verifyFresh(hashHex).then(
      ({ grant, generation: checkedIn }) => {
        settled();
        // The cache was cleared (a new epoch) while the answer was on its way: it was judged
        // against what the node no longer believes.
        if (checkedIn !== generation) throw new Refusal('auth_unavailable', 1);
        if (grant === null) {
          spendOnUnknownKey(client);
          grants.delete(hashHex);
          unknown.set(hashHex, true);
        } else {
          grants.set(hashHex, grant);
        }
        return grant;
      },
      (error: unknown) => {
        settled();
        if (cached !== undefined && options.failOpen) {
          events.failedOpen(cached.keyId);
          return cached;
        }
        throw error instanceof Refusal ? error : new Refusal('auth_unavailable', 1);
      },
    );
    inFlight.set(hashHex, promise);
    return promise;
  }

  return {
    lookup(hashHex, clientAddress) {
      const cached = grants.get(hashHex);
      if (cached !== undefined && now() - cached.verifiedAt <= options.trustWindowMs()) {
        events.hit();
        return cached;
      }
      if (cached === undefined && unknown.has(hashHex)) {
        events.negativeHit();
        return null;
      }
      return refresh(hashHex, cached, clientAddress);
    },
    applyEvent({ kind, keyHash, seq }) {
      grants.delete(keyHash);
      unknown.delete(keyHash);
      const existing = tombstones.get(keyHash);
      if (existing === undefined || existing.seq < seq) tombstones.set(keyHash, { seq, kind });
    },
    forgetTeam(teamId) {
      for (const [hash, grant] of grants.entries()) if (grant.teamId === teamId) grants.delete(hash);
    },
    forgetAll(seq) {
      grants.clear();
      unknown.clear();
      forgottenAtSeq = Math.max(forgottenAtSeq, seq);
    },
    size: () => grants.size,
    clear() {
      generation++;
      forgottenAtSeq = -1;
      grants.clear();
      unknown.clear();
      tombstones.clear();
      shapes.clear();
      inFlight.clear();
    },
  };
}
