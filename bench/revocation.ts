/**
 * `npm run bench:revocation`: three regions, each with its own Redis, two nodes per region,
 * constant proxied traffic; 1,000 keys revoked in a burst. Prints, per region, the delay
 * from revocation commit to each node applying it (and so refusing the key), the same with
 * one region's Redis down, and proxied throughput during the burst against before it.
 */
import http from 'node:http';
import type { ProxyNode } from '../proxy/proxy-node.js';
import { startRegions } from '../test/helpers/regions.js';
import { waitFor } from '../test/helpers/deadline.js';
import { bearer, proxyRequest } from '../test/helpers/proxy-client.js';
import { printTable, saveResults } from './lib/table.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000);
const STALENESS_MS = 2_000;
const REGIONS = ['us', 'eu', 'ap'];

const world = await startRegions(REGIONS, { relay: { heartbeatMs: 500, pollMs: 1_000 } });
const nodes: ProxyNode[] = [];
for (const region of REGIONS) for (let i = 0; i < 2; i++) nodes.push(await world.startNode(region, { stalenessBoundMs: STALENESS_MS }));
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** Proxied requests with a key nobody revokes, spread over every node, counted per window. */
function startTraffic(key: string) {
  let running = true;
  let completed = 0;
  const loops = Array.from({ length: 24 }, async (_, i) => {
    const node = nodes[i % nodes.length]!;
    while (running) {
      const response = await proxyRequest(node.port, `${world.origin.url}/`, bearer(key), { agent }).catch(() => undefined);
      if (response?.status === 200) completed++;
    }
  });
  return {
    count: () => completed,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function revokeBurst(keys: { id: string }[]): Promise<{ firstSeq: number; lastSeq: number; ms: number }> {
  const before = (await world.cp.adminDb.query<{ seq: number }>('SELECT coalesce(max(seq), 0) AS seq FROM outbox')).rows[0]!.seq;
  const started = performance.now();
  await inBatches(keys, 25, ({ id }) => world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`));
  const ms = performance.now() - started;
  const after = (await world.cp.adminDb.query<{ seq: number }>('SELECT max(seq) AS seq FROM outbox')).rows[0]!.seq;
  return { firstSeq: before + 1, lastSeq: after, ms };
}

async function delaysByRegion(firstSeq: number, lastSeq: number): Promise<Map<string, number[]>> {
  const expected = (lastSeq - firstSeq + 1) * 2;
  await waitFor(
    async () => {
      const { rows } = await world.cp.adminDb.query<{ region: string; acks: number }>(
        'SELECT region, count(*)::int AS acks FROM revocation_acks WHERE seq BETWEEN $1 AND $2 GROUP BY region',
        [firstSeq, lastSeq],
      );
      return rows.length === REGIONS.length && rows.every((row) => row.acks >= expected);
    },
    { what: 'every node to report every revocation', timeoutMs: 60_000 },
  );
  const { rows } = await world.cp.adminDb.query<{ region: string; ms: number }>(
    `SELECT a.region, extract(epoch FROM a.applied_at - o.created_at) * 1000 AS ms
     FROM revocation_acks a JOIN outbox o USING (seq) WHERE a.seq BETWEEN $1 AND $2`,
    [firstSeq, lastSeq],
  );
  const byRegion = new Map<string, number[]>();
  for (const row of rows) {
    const list = byRegion.get(row.region) ?? [];
    list.push(Math.max(0, Number(row.ms)));
    byRegion.set(row.region, list);
  }
  for (const list of byRegion.values()) list.sort((a, b) => a - b);
  return byRegion;
}

async function createWarmKeys(count: number): Promise<{ id: string; key: string }[]> {
  const keys: { id: string; key: string }[] = [];
  await inBatches(Array.from({ length: count }), 25, async () => keys.push(await world.createKey()));
  for (const node of nodes) await inBatches(keys, 50, ({ key }) => proxyRequest(node.port, `${world.origin.url}/`, bearer(key), { agent }));
  return keys;
}

try {
  process.stdout.write(`creating and caching ${KEYS} keys on ${nodes.length} nodes…\n`);
  const keys = await createWarmKeys(KEYS);
  const steady = await world.createKey();
  const traffic = startTraffic(steady.key);
  const windowStart = traffic.count();
  const beforeStarted = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const beforeRate = (traffic.count() - windowStart) / ((performance.now() - beforeStarted) / 1000);

  const duringStart = traffic.count();
  const burst = await revokeBurst(keys);
  const duringRate = (traffic.count() - duringStart) / (burst.ms / 1000);
  const healthy = await delaysByRegion(burst.firstSeq, burst.lastSeq);

  // One region's Redis down: its nodes notice the silence and fetch revocations themselves.
  const downKeys = await createWarmKeys(100);
  await world.redis.get('ap')!.stop();
  const outage = await revokeBurst(downKeys);
  const withOutage = await delaysByRegion(outage.firstSeq, outage.lastSeq);
  await traffic.stop();

  const rows = REGIONS.map((region) => {
    const delays = healthy.get(region)!;
    const down = withOutage.get(region)!;
    return {
      region,
      acks: delays.length,
      'p50 ms': percentile(delays, 0.5),
      'p99 ms': percentile(delays, 0.99),
      'max ms': delays[delays.length - 1]!,
      'max ms, ap Redis down': down[down.length - 1]!,
    };
  });
  printTable(
    `Revocation propagation: ${KEYS} keys revoked in ${(burst.ms / 1000).toFixed(1)} s, 3 regions × 2 nodes, staleness bound ${STALENESS_MS} ms`,
    rows,
  );
  printTable('Proxied traffic (24 keep-alive clients over 6 nodes, one unrevoked key)', [
    { window: 'before the burst', 'req/s': Math.round(beforeRate) },
    { window: 'during the burst', 'req/s': Math.round(duringRate), 'vs before': `${(duringRate / beforeRate).toFixed(2)}×` },
  ]);
  const healthyP99 = Math.max(...REGIONS.filter((region) => region !== 'ap').map((region) => percentile(healthy.get(region)!, 0.99)));
  process.stdout.write(`target: p99 ≤ 100 ms healthy (worst region ${healthyP99.toFixed(1)} ms); max ≤ ${STALENESS_MS + 500} ms with a region down (${rows.find((row) => row.region === 'ap')!['max ms, ap Redis down'].toFixed(0)} ms)\n`);
  process.stdout.write(`results: ${saveResults('revocation', { keys: KEYS, burst, outage, rows, beforeRate, duringRate })}\n`);
} finally {
  agent.destroy();
  await world.close();
}
