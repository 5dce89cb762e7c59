/**
 * `npm run bench:revocation`: three regions, each with its own Redis, two nodes per region,
 * constant proxied traffic; 1,000 keys revoked in a burst. Prints, per region, the delay
 * from revocation commit to each node applying it (and so refusing the key), the same with
 * one region's Redis down, and proxied throughput during the burst against before it.
 * The control plane runs here; every node, the traffic and the origin run in processes of
 * their own, as in production, so that no delay is one busy event loop's queue.
 */
import http from 'node:http';
import { inBatches } from '../test/helpers/batches.js';
import { startRegions } from '../test/helpers/regions.js';
import { waitFor } from '../test/helpers/deadline.js';
import { freePort } from '../test/helpers/ports.js';
import { bearer, proxyRequest } from '../test/helpers/proxy-client.js';
import { startProcess, type ChildServer } from '../test/helpers/processes.js';
import { printTable, saveResults } from './lib/table.js';
import { startBenchNode } from './lib/bench-node.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000);
const STALENESS_MS = 2_000;
const REGIONS = ['us', 'eu', 'ap'];
const CLIENTS = 24;

const world = await startRegions(REGIONS, { relay: { heartbeatMs: 500, pollMs: 1_000, leaseMs: 5_000 } });
const children: ChildServer[] = [];
const lastJson = (child: ChildServer) => JSON.parse(child.output().trim().split('\n').filter((line) => line.startsWith('{')).at(-1)!) as Record<string, number>;
const origin = await startProcess({ entry: 'bench/servers/origin.ts', args: ['1024'], ready: /^\{.*\}$/m });
children.push(origin);
const originUrl = `http://127.0.0.1:${lastJson(origin).http}/`;
await world.cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });

const nodePorts: number[] = [];
for (const region of REGIONS) {
  for (let i = 1; i <= 2; i++) {
    const port = await freePort();
    const node = await startBenchNode({
      controlPlaneUrl: world.cp.url,
      nodeToken: world.cp.nodeToken,
      redisUrl: world.redis.get(region)!.url,
      port,
      env: { NODE_ID: `${region}-node-${i}`, REGION: region, STALENESS_BOUND_MS: String(STALENESS_MS) },
    });
    children.push(node);
    nodePorts.push(port);
  }
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
// Keys are granted only the direct pool: nodes egress themselves, no exit in this process.
const createKey = () => world.createKey({ pools: ['direct'] });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** Proxied requests with a key nobody revokes, spread over every node, counted per window. */
async function startTraffic(key: string) {
  const traffic = await startProcess({ entry: 'bench/servers/proxied-traffic.ts', args: [key, originUrl, String(CLIENTS), ...nodePorts.map(String)], ready: /^\{.*\}$/m });
  children.push(traffic);
  return { count: () => lastJson(traffic).completed!, stop: () => traffic.stop() };
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
  await inBatches(Array.from({ length: count }), 25, async () => keys.push(await createKey()));
  for (const port of nodePorts) await inBatches(keys, 50, ({ key }) => proxyRequest(port, originUrl, bearer(key), { agent }));
  return keys;
}

try {
  process.stdout.write(`creating and caching ${KEYS} keys on ${nodePorts.length} nodes…\n`);
  const keys = await createWarmKeys(KEYS);
  const steady = await createKey();
  const traffic = await startTraffic(steady.key);
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
  printTable(`Proxied traffic (${CLIENTS} keep-alive clients over ${nodePorts.length} nodes, one unrevoked key)`, [
    { window: 'before the burst', 'req/s': Math.round(beforeRate) },
    { window: 'during the burst', 'req/s': Math.round(duringRate), 'vs before': `${(duringRate / beforeRate).toFixed(2)}×` },
  ]);
  const healthyP99 = Math.max(...REGIONS.filter((region) => region !== 'ap').map((region) => percentile(healthy.get(region)!, 0.99)));
  process.stdout.write(`target: p99 ≤ 100 ms healthy (worst region ${healthyP99.toFixed(1)} ms); max ≤ ${STALENESS_MS + 500} ms with a region down (${rows.find((row) => row.region === 'ap')!['max ms, ap Redis down'].toFixed(0)} ms)\n`);
  process.stdout.write(`results: ${saveResults('revocation', { keys: KEYS, burst, outage, rows, beforeRate, duringRate })}\n`);
} finally {
  agent.destroy();
  await Promise.all(children.map((child) => child.stop()));
  await world.close();
}
