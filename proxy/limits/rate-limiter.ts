import type { Redis } from 'ioredis';
import type { RateLimit } from '../../contract/node-api.js';
import { LRUCache } from 'lru-cache';

/**
 * Per-key request rates, shared by every node of a region through the region's Redis.
 *
 * GCRA (the generic cell rate algorithm): one number per key, the "theoretical arrival
 * time" of the next request, checked and advanced by one Lua script in one round trip, on
 * Redis's clock so nodes with skewed clocks agree. It spaces requests evenly with an exact
 * burst allowance, needs no window resets (no double burst at a window edge, unlike fixed
 * windows) and no per-request entries (unlike sliding logs).
 *
 * Each round trip decides a lease of up to 1% of a second's allowance (at most 100
 * requests), spent locally: one request at a time for small limits, so they stay exact,
 * and few round trips for large ones. A lease unused after 100 ms is dropped: nodes may
 * under-serve a little, never over-serve. One round trip per key is in flight at a time;
 * requests arriving meanwhile wait for it, and a refusal stands until the next request
 * would be allowed, so a flood of refused requests does not flood Redis.
 *
 * When Redis cannot be reached the limiter does not stop limiting: a circuit breaker
 * switches to the same algorithm in memory with the limit divided by the number of live
 * nodes in the region, and tries Redis again after a cooldown.
 */

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** Seconds to wait before retrying, when refused. */
  retryAfterSeconds: number;
}

export type LimiterMode = 'redis' | 'local';

export interface RateLimiterOptions {
  /** The region's Redis; without one (a single-process deployment) limits are kept here. */
  redis: Redis | undefined;
  now(): number;
  /** Live nodes in the region, to share a limit out when falling back to local limiting. */
  regionNodes(): number;
  /** How long the breaker stays open before Redis is tried again. */
  cooldownMs: number;
  onModeChange(mode: LimiterMode): void;
}

export interface RateLimiter {
  /** Synchronous while a lease lasts; a promise when Redis must be asked. */
  check(keyId: string, limit: RateLimit): RateDecision | Promise<RateDecision>;
  mode(): LimiterMode;
}

const LEASE_FRACTION = 0.01;
const MAX_LEASE = 100;
const LEASE_TTL_MS = 100;

// Takes up to ARGV[3] requests' worth at once; returns how many were granted.
const GCRA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local granted = math.min(tonumber(ARGV[3]), math.floor((now + tolerance - tat) / interval))
if granted < 1 then
  return {0, 0, math.ceil(tat + interval - tolerance - now), math.ceil(tat - now)}
end
local next_tat = tat + granted * interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1)
return {granted, math.floor((now + tolerance - next_tat) / interval), 0, math.ceil(next_tat - now)}
`;

/** [granted, remaining, retryAfterMs, resetMs] */
type GcraReply = [number, number, number, number];

declare module 'ioredis' {
  interface RedisCommander {
    portcullisGcra(key: string, intervalMs: string, burst: string, lease: string): Promise<GcraReply>;
  }
}

function decision(limit: RateLimit, [granted, remaining, retryAfterMs, resetMs]: GcraReply): RateDecision {
  return {
    allowed: granted >= 1,
    limit: limit.requestsPerSecond,
    remaining,
    resetSeconds: Math.ceil(resetMs / 1000),
    retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
  };
}

export function createRateLimiter({ redis, now, regionNodes, cooldownMs, onModeChange }: RateLimiterOptions): RateLimiter {
  redis?.defineCommand('portcullisGcra', { numberOfKeys: 1, lua: GCRA });
  const local = new LRUCache<string, number>({ max: 100_000 });
  const leases = new LRUCache<string, { left: number; expiresAt: number; refusedUntil: number; last: RateDecision }>({ max: 100_000 });
  const fetching = new Map<string, Promise<void>>();
  let mode: LimiterMode = redis === undefined ? 'local' : 'redis';
  let retryRedisAt = 0;
  let probing = false;

  function setMode(next: LimiterMode): void {
    if (mode === next) return;
    mode = next;
    onModeChange(next);
  }

  function checkLocally(keyId: string, limit: RateLimit): RateDecision {
    const share = Math.max(1, regionNodes());
    const rate = Math.max(limit.requestsPerSecond / share, 0.001);
    const burst = Math.max(1, Math.floor(limit.burst / share));
    const interval = 1000 / rate;
    const at = now();
    const tat = Math.max(local.get(keyId) ?? at, at);
    const nextTat = tat + interval;
    const allowAt = nextTat - interval * burst;
    if (at < allowAt) return decision(limit, [0, 0, allowAt - at, tat - at]);
    local.set(keyId, nextTat);
    return decision(limit, [1, Math.floor((at - allowAt) / interval), 0, nextTat - at]);
  }

  async function fetchLease(client: Redis, keyId: string, limit: RateLimit): Promise<void> {
    if (mode === 'local') probing = true;
    try {
      const size = Math.max(1, Math.min(MAX_LEASE, Math.floor(limit.requestsPerSecond * LEASE_FRACTION), limit.burst));
      const reply = await client.portcullisGcra(`portcullis:rate:${keyId}`, String(1000 / limit.requestsPerSecond), String(limit.burst), String(size));
      setMode('redis');
      const at = now();
      leases.set(keyId, { left: reply[0], expiresAt: at + LEASE_TTL_MS, refusedUntil: reply[0] === 0 ? at + reply[2] : 0, last: decision(limit, reply) });
    } catch {
      retryRedisAt = now() + cooldownMs;
      setMode('local');
    } finally {
      probing = false;
    }
  }

  function check(keyId: string, limit: RateLimit): RateDecision | Promise<RateDecision> {
    const at = now();
    const lease = leases.get(keyId);
    if (lease !== undefined) {
      if (lease.left > 0 && lease.expiresAt > at) {
        lease.left--;
        return lease.last;
      }
      if (lease.refusedUntil > at) return lease.last;
    }
    const client = redis !== undefined && (mode === 'redis' || (at >= retryRedisAt && !probing)) ? redis : undefined;
    if (client === undefined) return checkLocally(keyId, limit);
    let pending = fetching.get(keyId);
    if (pending === undefined) {
      pending = fetchLease(client, keyId, limit).finally(() => fetching.delete(keyId));
      fetching.set(keyId, pending);
    }
    return pending.then(() => (mode === 'local' ? checkLocally(keyId, limit) : check(keyId, limit)));
  }

  return {
    check,
    mode: () => mode,
  };
}
