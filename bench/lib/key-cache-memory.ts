/**
 * Heap bytes per cached key, measured in a process of its own (run with --expose-gc):
 * `entries` keys of 100 teams with a few grant shapes, each answer parsed from JSON as a
 * node receives it. Prints one JSON line.
 *
 * usage: node --expose-gc --import tsx bench/lib/key-cache-memory.ts <entries>
 */
import { createHash } from 'node:crypto';
import type { VerifiedKey } from '../../contract/node-api.js';
import { createKeyCache } from '../../proxy/auth/key-cache.js';

const entries = Number(process.argv[2] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

const SHAPES: Pick<VerifiedKey, 'pools' | 'countries' | 'rateLimit' | 'concurrency'>[] = [
  { pools: [], countries: [], rateLimit: null, concurrency: null },
  { pools: ['residential'], countries: ['DE', 'FR', 'US'], rateLimit: null, concurrency: null },
  { pools: ['residential', 'mobile'], countries: [], rateLimit: { requestsPerSecond: 50, burst: 50 }, concurrency: null },
  { pools: ['datacenter'], countries: ['US'], rateLimit: { requestsPerSecond: 10, burst: 20 }, concurrency: { perNode: 5, perRegion: 20 } },
];

function answerFor(index: number): string {
  const key: VerifiedKey = {
    id: `key_${index.toString(36).padStart(16, '0')}`,
    teamId: `team_${(index % 100).toString(36).padStart(16, '0')}`,
    status: 'active',
    expiresAt: index % 3 === 0 ? '2030-01-01T00:00:00.000Z' : null,
    overQuota: false,
    ...SHAPES[index % SHAPES.length]!,
  };
  return JSON.stringify(key);
}

const hashOf = (index: number) => createHash('sha256').update(`secret-${index}`).digest('hex');
const noop = () => {};

function heapUsed(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

// Which index each hash stands for, so the stand-in verify can answer; made before the
// baseline, while the cache keeps copies of the hashes made at lookup, as a node does.
const indexOf = new Map(Array.from({ length: entries }, (_, index) => [hashOf(index), index]));
const before = heapUsed();
const cache = createKeyCache({
  verify: async (hash) => ({ key: JSON.parse(answerFor(indexOf.get(hash)!)) as VerifiedKey, seq: 1, epoch: 'e1' }),
  now: Date.now,
  maxEntries: entries,
  maxNegativeEntries: 10_000,
  negativeTtlMs: 10_000,
  unknownPerSecond: 1_000,
  unknownPerSecondPerClient: 1_000,
  maxVerifyInFlight: 1_000_000,
  trustWindowMs: () => 300_000,
  failOpen: false,
  epoch: () => 'e1',
  resync: async () => {},
  events: { hit: noop, miss: noop, coalesced: noop, negativeHit: noop, verified: noop, failedOpen: noop },
});
const client = '127.0.0.1';
const started = performance.now();
for (let batch = 0; batch < entries; batch += 10_000) {
  const pending: Promise<unknown>[] = [];
  for (let index = batch; index < Math.min(entries, batch + 10_000); index++) {
    const looked = cache.lookup(hashOf(index), client);
    if (looked instanceof Promise) pending.push(looked);
  }
  await Promise.all(pending);
}
const filled = performance.now() - started;
const after = heapUsed();
if (cache.size() !== entries) throw new Error(`cached ${cache.size()} of ${entries}`);
process.stdout.write(`${JSON.stringify({ entries, bytesPerEntry: (after - before) / entries, heapMb: (after - before) / 1e6, fillMs: filled })}\n`);
