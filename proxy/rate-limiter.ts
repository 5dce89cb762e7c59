import type { Redis } from 'ioredis';
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
 * When Redis cannot be reached the limiter does not stop limiting: a circuit breaker
 * switches to the same algorithm in memory with the limit divided by the number of live
 * nodes in the region, and tries Redis again after a cooldown.
 */

export interface RateLimit {
  requestsPerSecond: number;
  burst: number;
}

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
  check(keyId: string, limit: RateLimit): Promise<RateDecision>;
  mode(): LimiterMode;
}

const GCRA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - tolerance
if now < allow_at then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1)
return {1, math.floor((now - allow_at) / interval), 0, math.ceil(next_tat - now)}
`;

type GcraReply = [number, number, number, number];

declare module 'ioredis' {
  interface RedisCommander {
    portcullisGcra(key: string, intervalMs: string, burst: string): Promise<GcraReply>;
  }
}

function decision(limit: RateLimit, [allowed, remaining, retryAfterMs, resetMs]: GcraReply): RateDecision {
  return {
    allowed: allowed === 1,
    limit: limit.requestsPerSecond,
    remaining,
    resetSeconds: Math.ceil(resetMs / 1000),
    retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
  };
}

export function createRateLimiter({ redis, now, regionNodes, cooldownMs, onModeChange }: RateLimiterOptions): RateLimiter {
  redis?.defineCommand('portcullisGcra', { numberOfKeys: 1, lua: GCRA });
  const local = new LRUCache<string, number>({ max: 100_000 });
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

  return {
    async check(keyId, limit) {
      const useRedis = redis !== undefined && (mode === 'redis' || (now() >= retryRedisAt && !probing));
      if (!useRedis) return checkLocally(keyId, limit);
      if (mode === 'local') probing = true;
      try {
        const reply = await redis.portcullisGcra(`portcullis:rate:${keyId}`, String(1000 / limit.requestsPerSecond), String(limit.burst));
        setMode('redis');
        return decision(limit, reply);
      } catch {
        retryRedisAt = now() + cooldownMs;
        setMode('local');
        return checkLocally(keyId, limit);
      } finally {
        probing = false;
      }
    },
    mode: () => mode,
  };
}
