import { Redis, type RedisOptions } from 'ioredis';
import { parseRedisTarget } from './redis-target.js';

/** A client for `url` (already checked by the config reader) with the caller's options. */
export function createRedisClient(url: string, options: RedisOptions): Redis {
  const parsed = parseRedisTarget(url);
  if ('problem' in parsed) throw new Error(`Redis URL ${parsed.problem}`);
  const { target } = parsed;
  if (target.kind === 'server') return new Redis(url, options);
  return new Redis({
    ...options,
    sentinels: target.sentinels,
    name: target.name,
    db: target.db,
    ...(target.password !== undefined && { password: target.password }),
    ...(target.sentinelPassword !== undefined && { sentinelPassword: target.sentinelPassword }),
    // No failoverDetector: it cut a subscriber's reconnection mid-way and left it unsubscribed for good
    // (test/faults/redis-sentinel.test.ts, 4 runs in 5). Sentinel itself closes the clients of a
    // primary it demotes, and a dead primary's sockets close, so a reconnection follows every failover.
    // The sentinels all down is a Redis outage like any other: keep asking, never give up.
    sentinelRetryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 5), 1_000),
  });
}
