import t from 'tap';
import { generateToken } from '../../lib/secret-format.js';
import { createApiClient } from '../helpers/control-plane.js';
import { deadline, waitFor } from '../helpers/deadline.js';
import { startOrigin } from '../helpers/origin.js';
import { freePort } from '../helpers/ports.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startControlPlaneProcess, startProxyProcess, type ChildServer } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis.js';
import { startTraffic, type TrafficSample } from '../helpers/traffic.js';

/**
 * The control plane is SIGKILLed while traffic flows, then started again. Promise: a node
 * keeps serving the keys it has cached while its feed is fresh, refuses them with 503
 * auth_unavailable once the feed has been silent for the staleness bound (it can no longer
 * learn of revocations), and serves again by itself once the control plane is back.
 */

const STALENESS_MS = 2_000;
const HEARTBEAT_MS = 200;

const redis = await startRedis();
t.teardown(() => redis.close());
const database = await createTestDatabase();
t.teardown(() => database.drop());
const origin = await startOrigin();
t.teardown(() => origin.close());
const adminToken = generateToken();
const nodeToken = generateToken();
const port = await freePort();
const url = `http://127.0.0.1:${port}`;

// Restarted on the same port, where the node looks for it.
const startControlPlane = () =>
  startControlPlaneProcess({ DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken, PORT: String(port), REGIONS: `local=${redis.url}`, HEARTBEAT_MS: String(HEARTBEAT_MS) });

let controlPlane: ChildServer = await startControlPlane();
t.teardown(() => controlPlane.kill('SIGKILL'));
const api = createApiClient(url, adminToken);
await api.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
const team = (await api.request('POST', '/v1/teams', { body: { name: 'crash' } })).body;
const keys: string[] = [];
for (let i = 0; i < 4; i++) keys.push((await api.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `k${i}`, pools: ['direct'] } })).body.key);

const node = await startProxyProcess({ REGION: 'local', CONTROL_PLANE_URL: url, NODE_TOKEN: nodeToken, REDIS_URL: redis.url, STALENESS_BOUND_MS: String(STALENESS_MS) });
t.teardown(() => node.kill('SIGKILL'));
const metricsUrl = `http://127.0.0.1:${node.metricsPort}/metrics`;

/** When the node last heard its feed, read from its metrics. */
async function feedLastHeardAt(): Promise<number> {
  const askedAt = Date.now();
  const silenceSeconds = Number(/^portcullis_proxy_feed_silence_seconds (\S+)$/m.exec(await (await fetch(metricsUrl)).text())![1]);
  return askedAt - silenceSeconds * 1000;
}

t.test('control plane SIGKILLed during traffic: cached keys served, then fail closed after the bound, then recovery', async (t) => {
  const traffic = startTraffic({ ports: () => [node.port], keyFor: (n) => keys[n % keys.length]!, url: `${origin.url}/`, concurrency: 4 });
  t.teardown(() => traffic.stop());
  await waitFor(() => traffic.samples.filter((sample) => sample.status === 200).length > 50, { what: 'traffic to flow' });

  // Killed just after a heartbeat reached the node: on a loaded machine one may come late.
  const heardAt = await waitFor(async () => {
    const at = await feedLastHeardAt();
    return Date.now() - at < HEARTBEAT_MS / 2 && at;
  }, { what: 'a fresh heartbeat' });
  await controlPlane.kill('SIGKILL');
  const killedAt = Date.now();
  const startedBetween = (from: number, to: number) => traffic.samples.filter((sample) => sample.startedAt >= from && sample.startedAt < to);
  const describe = (samples: TrafficSample[]) => [...new Set(samples.map((sample) => `${sample.status} ${sample.code ?? ''}`.trim()))].join(', ');
  await waitFor(() => startedBetween(killedAt + STALENESS_MS + 1_000, Infinity).length > 50, { what: 'traffic well past the staleness bound' });

  const fresh = startedBetween(killedAt, heardAt + STALENESS_MS - deadline(200));
  t.ok(fresh.length > 0 && fresh.every((sample) => sample.status === 200), `while the feed is within the bound, cached keys are served (${fresh.length} requests: ${describe(fresh)})`);
  const stale = startedBetween(killedAt + STALENESS_MS + deadline(500), Infinity);
  t.ok(
    stale.every((sample) => sample.status === 503 && sample.code === 'auth_unavailable'),
    `past the bound, they fail closed with 503 auth_unavailable (${stale.length} requests: ${describe(stale)})`,
  );
  const firstRefusal = traffic.samples.filter((sample) => sample.status !== 200).reduce((first, sample) => Math.min(first, sample.startedAt), Infinity);
  t.comment(`first refusal ${firstRefusal - heardAt} ms after the last heartbeat, ${firstRefusal - killedAt} ms after the kill (bound ${STALENESS_MS} ms)`);

  controlPlane = await startControlPlane();
  const restartedAt = Date.now();
  const recoveredAt = await waitFor(
    () => {
      const recent = traffic.samples.filter((sample) => sample.startedAt > restartedAt);
      const firstServed = recent.find((sample) => sample.status === 200);
      return firstServed !== undefined && recent.filter((sample) => sample.startedAt > firstServed.startedAt).length > 50 && firstServed.startedAt;
    },
    { what: 'traffic to be served again' },
  );
  const samples = await traffic.stop();
  const afterRecovery = samples.filter((sample) => sample.startedAt > recoveredAt);
  t.ok(afterRecovery.every((sample) => sample.status === 200), `served again ${recoveredAt - restartedAt} ms after the control plane was back, and from then on (${afterRecovery.length} requests: ${describe(afterRecovery)})`);
  t.same(new Set(samples.map((sample) => sample.status)), new Set([200, 503]), 'nothing but 200 and 503 throughout');
});
