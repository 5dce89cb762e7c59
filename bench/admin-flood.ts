/**
 * `npm run bench:admin-flood [-- --quick]`: a proxy's first use of new keys (each one a
 * verification round trip to the node API) while 32 clients flood the admin list API with
 * 500-key pages. The bar: p99 ≤ 100 ms. Rows, each measured in this same run:
 *   - baseline: no flood;
 *   - one control plane with every role, the heavy-call limit at its default;
 *   - the same without the limit (what a control plane did before it);
 *   - the node API in a process of its own (`ROLES=node-api` beside `ROLES=admin,relay`).
 */
import { measureFirstUse, percentile, startAdminFlood, startFloodWorld, type FloodWorld } from '../test/helpers/admin-flood.js';
import { waitFor } from '../test/helpers/deadline.js';
import { printTable, saveResults, type Row } from './lib/table.js';

const quick = process.argv.includes('--quick');
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? (quick ? 100 : 400));
const BAR_MS = 100;

async function measure(world: FloodWorld, title: string, clients: number): Promise<Row> {
  // Warm-up: JIT and connections, on keys not measured.
  await measureFirstUse({ proxyPort: world.node.port, keys: await world.freshKeys(20), targetUrl: `${world.origin.url}/` });
  const keys = await world.freshKeys(SAMPLES);
  const flood = clients > 0 ? startAdminFlood({ url: world.adminUrl, path: world.floodPath, token: world.adminToken, clients }) : undefined;
  if (flood !== undefined) await waitFor(() => (flood.statuses.get(200) ?? 0) >= clients, { what: 'the flood to get pages', timeoutMs: 60_000 });
  const pagesBefore = flood?.statuses.get(200) ?? 0;
  const started = performance.now();
  const measured = await measureFirstUse({ proxyPort: world.node.port, keys, targetUrl: `${world.origin.url}/` });
  const seconds = (performance.now() - started) / 1000;
  const pages = (flood?.statuses.get(200) ?? 0) - pagesBefore;
  await flood?.stop();
  const busy = flood?.statuses.get(503) ?? 0;
  const p99 = percentile(measured.latencies, 99);
  return {
    scenario: title,
    'flood clients': clients,
    'first uses': measured.latencies.length,
    'p50 ms': percentile(measured.latencies, 50),
    'p99 ms': p99,
    'max ms': measured.latencies.at(-1)!,
    [`p99 ≤ ${BAR_MS} ms`]: p99 <= BAR_MS ? 'yes' : 'no',
    'admin pages/s': Math.round(pages / seconds),
    'admin 503 busy': busy,
    failed: measured.failures.length,
  };
}

async function withWorld(options: Parameters<typeof startFloodWorld>[0], run: (world: FloodWorld) => Promise<Row[]>): Promise<Row[]> {
  const world = await startFloodWorld(options);
  try {
    return await run(world);
  } finally {
    await world.close();
  }
}

const rows: Row[] = [];
rows.push(
  ...(await withWorld({}, async (world) => [
    await measure(world, 'baseline: no flood', 0),
    await measure(world, 'one control plane, every role (heavy-call limit 4)', CLIENTS),
  ])),
);
rows.push(
  ...(await withWorld({ controlPlanes: [{ ADMIN_HEAVY_CONCURRENCY: '1000', ADMIN_HEAVY_QUEUE: '1000' }] }, async (world) => [
    await measure(world, 'one control plane, no heavy-call limit (before)', CLIENTS),
  ])),
);
rows.push(
  ...(await withWorld({ controlPlanes: [{ ROLES: 'admin,relay' }, { ROLES: 'node-api' }] }, async (world) => [
    await measure(world, 'ROLES=admin,relay + ROLES=node-api', CLIENTS),
  ])),
);
printTable(`First use of new keys through a proxy while ${CLIENTS} clients list 500-key pages`, rows);
process.stdout.write(`results: ${saveResults('admin-flood', { clients: CLIENTS, samples: SAMPLES, rows })}\n`);
