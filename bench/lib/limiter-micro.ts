import { Redis } from 'ioredis';
import { createRateLimiter } from '../../proxy/limits/rate-limiter.js';

export interface LimiterMicroResult {
  name: string;
  microsecondsPerDecision: number;
  decisionsPerSecond: number;
}

/** One rate-limit decision against Redis (no lease): one round trip alone, and many in flight at once. */
export async function measureLimiterDecision(redisUrl: string, iterations = 20_000): Promise<LimiterMicroResult[]> {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true, enableOfflineQueue: true });
  const limiter = createRateLimiter({ redis, now: Date.now, regionNodes: () => 1, cooldownMs: 1_000, onModeChange: () => {} });
  // A rate this low leases one request per round trip, so every decision asks Redis.
  const limit = { requestsPerSecond: 100, burst: 1_000_000_000 };
  try {
    for (let i = 0; i < 1_000; i++) await limiter.check('warm', limit);
    const results: LimiterMicroResult[] = [];
    let started = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await limiter.check('sequential', limit);
    let seconds = Number(process.hrtime.bigint() - started) / 1e9;
    results.push({ name: 'one at a time (round-trip latency)', microsecondsPerDecision: (seconds / iterations) * 1e6, decisionsPerSecond: iterations / seconds });
    started = process.hrtime.bigint();
    const concurrency = 64;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        for (let i = 0; i < iterations / concurrency; i++) await limiter.check(`key-${worker}`, limit);
      }),
    );
    seconds = Number(process.hrtime.bigint() - started) / 1e9;
    results.push({ name: '64 in flight (auto-pipelined)', microsecondsPerDecision: (seconds / iterations) * 1e6, decisionsPerSecond: iterations / seconds });
    return results;
  } finally {
    redis.disconnect();
  }
}
