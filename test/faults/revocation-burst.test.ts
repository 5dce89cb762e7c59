import t from 'tap';
import http from 'node:http';
import { sha256Hex } from '../../lib/hash.js';
import { inBatches } from '../helpers/batches.js';
import { waitFor } from '../helpers/deadline.js';
import { startProcessWorld } from '../helpers/process-world.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { seedUsableKeys } from '../helpers/seed-keys.js';
import { startTraffic } from '../helpers/traffic.js';

/**
 * 1,000 keys, cached on two node processes and all in use, revoked in one burst of API
 * calls. Promise: no request with a revoked key is served once the staleness bound has
 * passed since its revocation answered (and, with the feed healthy, within far less).
 */

const KEYS = 1_000;
const STALENESS_MS = 2_000;

const world = await startProcessWorld();
t.teardown(() => world.close());
const { cp, origin, team } = world;
const secrets = await seedUsableKeys(cp.adminDb, team.id, KEYS);
const { rows } = await cp.adminDb.query<{ id: string; hash: string }>("SELECT id, encode(key_hash, 'hex') AS hash FROM api_keys WHERE team_id = $1", [team.id]);
const idOf = new Map(rows.map((row) => [row.hash, row.id]));
const keys = secrets.map((key) => ({ key, id: idOf.get(sha256Hex(key))! }));
const nodes = await Promise.all([0, 1].map(() => world.startNode({ env: { STALENESS_BOUND_MS: String(STALENESS_MS) } })));

t.test('1,000 revocations in a burst under traffic: no revoked key served past the bound', async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  t.teardown(() => agent.destroy());
  for (const node of nodes) {
    await inBatches(keys, 100, async ({ key }) => {
      const response = await proxyRequest(node.port, `${origin.url}/warm`, bearer(key), { agent });
      if (response.status !== 200) throw new Error(`warm-up: ${response.status}`);
    });
  }
  const traffic = startTraffic({ ports: () => nodes.map((node) => node.port), keyFor: (n) => keys[(n * 7) % KEYS]!.key, url: `${origin.url}/`, concurrency: 8 });
  t.teardown(() => traffic.stop());

  const revokedAt = new Map<string, number>();
  const burstStarted = Date.now();
  await inBatches(keys, 25, async ({ key, id }) => {
    const response = await cp.request('POST', `/v1/teams/${team.id}/keys/${id}/revoke`);
    if (response.status !== 200) throw new Error(`revoke: ${response.status}`);
    revokedAt.set(key, Date.now());
  });
  const burstMs = Date.now() - burstStarted;
  const burstEnded = Date.now();
  await waitFor(() => traffic.samples.some((sample) => sample.startedAt > burstEnded + STALENESS_MS), { what: 'traffic past the bound after the burst' });
  const samples = await traffic.stop();

  const servedAfter = samples.filter((sample) => sample.status === 200 && revokedAt.has(sample.key)).map((sample) => sample.startedAt - revokedAt.get(sample.key)!);
  const latest = Math.max(0, ...servedAfter);
  t.ok(samples.length > 1_000, `${samples.length} requests during a burst of ${KEYS} revocations (${burstMs} ms)`);
  t.equal(servedAfter.filter((ms) => ms > STALENESS_MS).length, 0, `no revoked key served past the ${STALENESS_MS} ms bound (latest: ${latest} ms after its revocation answered)`);
  // Requests with different keys share the traffic's keep-alive connections, and a revocation
  // closes every connection its key was used on.
  const unexpected = samples.filter((sample) => sample.status !== 200 && sample.code !== 'key_revoked' && sample.code !== 'ECONNRESET');
  t.same([...new Set(unexpected.map((sample) => `${sample.status} ${sample.code}`))], [], 'requests were served, refused as revoked, or cut with a revoked key\'s connection');
  const last = samples.filter((sample) => sample.startedAt > burstEnded + STALENESS_MS);
  t.ok(last.length > 0 && last.every((sample) => sample.code === 'key_revoked'), `after the bound every key is refused as revoked on both nodes (${last.length} requests)`);
});
