import t from 'tap';
import { deadline, waitFor } from '../helpers/deadline.js';
import { measureFirstUse, percentile, startAdminFlood, startFloodWorld } from '../helpers/admin-flood.js';

/**
 * The node API cannot be starved by admin traffic: while clients flood the admin list API
 * with 500-key pages, a proxy's first use of a new key (a verification round trip to the
 * node API of the same control plane process) stays fast. The benchmark
 * (`npm run bench:admin-flood`) holds the real bar, p99 ≤ 100 ms with 32 clients; this
 * machine is shared, so here 8 clients and p99 ≤ 1 s, with proof that the flood really
 * filled the heavy-call limit the whole time.
 */

const CLIENTS = 8;
const SAMPLES = 200;

const world = await startFloodWorld();
t.teardown(() => world.close());
const [cp] = world.controlPlanes;
const target = `${world.origin.url}/`;

async function heavyCalls(): Promise<{ running: number; waiting: number }> {
  const text = await (await fetch(`${cp!.url}/metrics`)).text();
  const value = (state: string) => Number(new RegExp(`^portcullis_admin_heavy_calls\\{state="${state}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { running: value('running'), waiting: value('waiting') };
}

t.test(`first use of a new key stays fast while ${CLIENTS} clients flood the admin list API`, async (t) => {
  const warm = await measureFirstUse({ proxyPort: world.node.port, keys: await world.freshKeys(20), targetUrl: target });
  t.same(warm.failures, [], 'new keys are served');

  const keys = await world.freshKeys(SAMPLES);
  const flood = startAdminFlood({ url: world.adminUrl, path: world.floodPath, token: world.adminToken, clients: CLIENTS });
  t.teardown(() => flood.stop());
  await waitFor(() => (flood.statuses.get(200) ?? 0) >= CLIENTS, { what: 'the flood to get pages' });
  const pagesBefore = flood.statuses.get(200) ?? 0;

  let sampling = true;
  const seen: { running: number; waiting: number }[] = [];
  const sampler = (async () => {
    while (sampling) seen.push(await heavyCalls());
  })();
  const measured = await measureFirstUse({ proxyPort: world.node.port, keys, targetUrl: target });
  sampling = false;
  await sampler;
  const pages = (flood.statuses.get(200) ?? 0) - pagesBefore;
  await flood.stop();

  const p50 = percentile(measured.latencies, 50);
  const p99 = percentile(measured.latencies, 99);
  t.same(measured.failures, [], `all ${SAMPLES} first uses served`);
  t.ok(pages >= 20, `the flood got ${pages} pages of 500 keys while first uses were measured`);
  t.same([...flood.statuses.keys()].filter((status) => status !== 200), [], 'every flood call was answered 200: queued, not refused');
  const saturated = seen.filter((sample) => sample.running === 4 && sample.waiting > 0).length;
  t.ok(saturated >= seen.length / 4, `the heavy-call limit was full with calls waiting in ${saturated} of ${seen.length} samples`);
  t.ok(Math.max(...seen.map((sample) => sample.running)) <= 4, 'never more than ADMIN_HEAVY_CONCURRENCY (4) running');
  t.ok(p99 <= deadline(1_000), `first use p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (bound ${deadline(1_000)} ms)`);
});
