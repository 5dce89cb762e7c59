import { LRUCache } from 'lru-cache';

export interface Total {
  count: number;
  capped: boolean;
}

/**
 * Remembers list totals for a moment. Counting up to the cap costs a few milliseconds, far
 * more than a page itself, and a busy dashboard asks for the same first page again and
 * again. A total is at most `ttlMs` old, and a key change made through this instance drops
 * its team's totals at once; concurrent requests for one total share one count.
 */
export interface TotalCache {
  get(teamId: string, filterKey: string, count: () => Promise<Total>): Promise<Total>;
  /** Called after any change to a team's keys. */
  invalidate(teamId: string): void;
}

export function createTotalCache({ ttlMs, maxEntries }: { ttlMs: number; maxEntries: number }): TotalCache {
  const totals = new LRUCache<string, Total>({ max: maxEntries, ttl: ttlMs });
  const pending = new Map<string, Promise<Total>>();
  const versions = new LRUCache<string, number>({ max: maxEntries });

  return {
    get(teamId, filterKey, count) {
      const key = `${teamId}\0${versions.get(teamId) ?? 0}\0${filterKey}`;
      const cached = totals.get(key);
      if (cached !== undefined) return Promise.resolve(cached);
      let running = pending.get(key);
      if (running === undefined) {
        running = count().then(
          (total) => {
            pending.delete(key);
            totals.set(key, total);
            return total;
          },
          (error: unknown) => {
            pending.delete(key);
            throw error;
          },
        );
        pending.set(key, running);
      }
      return running;
    },
    invalidate(teamId) {
      versions.set(teamId, (versions.get(teamId) ?? 0) + 1);
    },
  };
}
