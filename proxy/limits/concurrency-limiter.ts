import type { Redis } from 'ioredis';
import type { ConcurrencyLimit } from '../../contract/node-api.js';
import { Refusal } from '../../access/refusal.js';

/**
 * Caps on a key's open connections (tunnels and in-flight requests): per node, counted
 * here, and per region, counted in the region's Redis as one hash per key with a field per
 * node. Each node writes only its own field, as an absolute count with an expiry, so a
 * retried or lost write cannot drift the total and a crashed node's share expires. When
 * Redis is down the regional cap is shared out over the region's live nodes locally.
 */

export interface ConcurrencyLimiterOptions {
  /** The region's Redis; without one the regional cap is this node's cap. */
  redis: Redis | undefined;
  /** This process's field in each key's hash: the node id, with the worker's number when a node runs several. */
  nodeId: string;
  /** Live processes in the region (nodes times their workers): the regional cap's local share while Redis is down. */
  regionNodes(): number;
  /**
   * Where per-node slots are counted when the node runs several workers (the primary, over
   * IPC), so the cap holds for the node as a whole; without it they are counted here.
   */
  nodeSlots?: NodeSlots | undefined;
  /** How long a node's count stands in Redis without a refresh. */
  entryTtlMs: number;
}

/** Per-node slots counted outside this process: granted or refused by whoever holds the counts. */
export interface NodeSlots {
  acquire(keyId: string, perNode: number): Promise<boolean>;
  release(keyId: string): void;
}

export interface ConcurrencyLimiter {
  /** Takes a slot or throws 429 concurrency_exceeded; the returned function gives it back. */
  acquire(keyId: string, limit: ConcurrencyLimit): Promise<() => void>;
  close(): void;
}

const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = redis.call('HGETALL', KEYS[1])
local others = 0
for i = 1, #fields, 2 do
  if fields[i] ~= ARGV[1] then
    local count, expires = string.match(fields[i + 1], '^(%d+):(%d+)$')
    if count and tonumber(expires) > now then others = others + tonumber(count)
    else redis.call('HDEL', KEYS[1], fields[i]) end
  end
end
local wanted = tonumber(ARGV[2])
if others + wanted > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], wanted .. ':' .. (now + tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) * 2)
return 1
`;

const SET_OWN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(ARGV[2]) == 0 then return redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[3])))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
`;

declare module 'ioredis' {
  interface RedisCommander {
    portcullisAcquire(key: string, nodeId: string, wanted: string, cap: string, ttlMs: string): Promise<number>;
    portcullisSetOwn(key: string, nodeId: string, count: string, ttlMs: string): Promise<number>;
  }
}

const hashKey = (keyId: string) => `portcullis:conc:${keyId}`;

export function createConcurrencyLimiter({ redis, nodeId, regionNodes, nodeSlots, entryTtlMs }: ConcurrencyLimiterOptions): ConcurrencyLimiter {
  redis?.defineCommand('portcullisAcquire', { numberOfKeys: 1, lua: ACQUIRE });
  redis?.defineCommand('portcullisSetOwn', { numberOfKeys: 1, lua: SET_OWN });
  const open = new Map<string, number>();
  const regional = new Set<string>();
  // Regional acquires waiting for Redis, per key.
  const acquiring = new Map<string, number>();
  const ttl = String(entryTtlMs);

  /** A write that fails is made good by the next refresh, or expires with its TTL. */
  function writeOwn(keyId: string): void {
    redis?.portcullisSetOwn(hashKey(keyId), nodeId, String(open.get(keyId) ?? 0), ttl).catch(() => undefined);
  }

  // Our counts expire in Redis unless refreshed, so a node that dies frees its share.
  const refresher = setInterval(() => {
    for (const keyId of regional) writeOwn(keyId);
  }, Math.max(100, Math.floor(entryTtlMs / 3)));
  refresher.unref();

  /** Gives a slot back; `tellRegion` writes this node's new count to Redis. */
  function release(keyId: string, tellRegion = true): void {
    const count = (open.get(keyId) ?? 1) - 1;
    if (count <= 0) open.delete(keyId);
    else open.set(keyId, count);
    if (tellRegion && regional.has(keyId)) {
      writeOwn(keyId);
      if (count <= 0) regional.delete(keyId);
    }
  }

  function releaser(keyId: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release(keyId);
    };
  }

  /**
   * Asks the region. The slot is already counted here, so parallel acquires on this node see
   * each other, and Redis is told this node's count including it (scripts run in the order
   * they were sent). A refused slot is given back; this node's count in Redis is corrected
   * once no other acquire of the key is in flight, when it holds only granted slots.
   */
  async function acquireRegional(keyId: string, perRegion: number, reserved: number): Promise<boolean> {
    acquiring.set(keyId, (acquiring.get(keyId) ?? 0) + 1);
    let allowed: boolean;
    try {
      if (redis === undefined) throw new Error('no regional Redis');
      allowed = (await redis.portcullisAcquire(hashKey(keyId), nodeId, String(reserved), String(perRegion), ttl)) === 1;
      regional.add(keyId);
    } catch {
      allowed = reserved <= Math.max(1, Math.floor(perRegion / Math.max(1, regionNodes())));
    }
    const stillAcquiring = acquiring.get(keyId)! - 1;
    if (stillAcquiring === 0) acquiring.delete(keyId);
    else acquiring.set(keyId, stillAcquiring);
    if (!allowed) release(keyId, stillAcquiring === 0);
    return allowed;
  }

  async function acquireHere(keyId: string, limit: ConcurrencyLimit): Promise<() => void> {
    const reserved = (open.get(keyId) ?? 0) + 1;
    if (limit.perNode !== null && reserved > limit.perNode) throw new Refusal('concurrency_exceeded', 1);
    open.set(keyId, reserved);
    if (limit.perRegion !== null && !(await acquireRegional(keyId, limit.perRegion, reserved))) throw new Refusal('concurrency_exceeded', 1);
    return releaser(keyId);
  }

  /** The node-wide slot first; the regional cap is then counted here as before. */
  async function acquireShared(slots: NodeSlots, keyId: string, limit: ConcurrencyLimit & { perNode: number }): Promise<() => void> {
    if (!(await slots.acquire(keyId, limit.perNode))) throw new Refusal('concurrency_exceeded', 1);
    let releaseHere: () => void;
    try {
      releaseHere = await acquireHere(keyId, { ...limit, perNode: null });
    } catch (error) {
      slots.release(keyId);
      throw error;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      releaseHere();
      slots.release(keyId);
    };
  }

  return {
    acquire(keyId, limit) {
      if (nodeSlots !== undefined && limit.perNode !== null) return acquireShared(nodeSlots, keyId, { ...limit, perNode: limit.perNode });
      return acquireHere(keyId, limit);
    },
    close() {
      clearInterval(refresher);
      for (const keyId of regional) {
        open.delete(keyId);
        writeOwn(keyId);
      }
    },
  };
}
