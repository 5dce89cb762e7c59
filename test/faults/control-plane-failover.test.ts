import t from 'tap';
import { generateToken } from '../../lib/secret-format.js';
import { createApiClient } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';
import { startOrigin } from '../helpers/origin.js';
import { freePort } from '../helpers/ports.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startControlPlaneProcess, startProxyProcess, type ChildServer } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis.js';
import { startTraffic, type TrafficSample } from '../helpers/traffic.js';

/**
 * Two control planes on one database, a node given both (CONTROL_PLANE_URL=a,b). Promise:
 * the node spreads its calls over both; one SIGKILLed under traffic costs no 503 while the
 * other remains, keys created meanwhile verify through the other; once it is back it is
 * used again. The node's cache keeps keys for 100 ms only, so traffic keeps verifying.
 */

const redis = await startRedis();
t.teardown(() => redis.close());
const database = await createTestDatabase();
t.teardown(() => database.drop());
const origin = await startOrigin();
t.teardown(() => origin.close());
const adminToken = generateToken();
const nodeToken = generateToken();
const ports = [await freePort(), await freePort()] as const;
const urls = ports.map((port) => `http://127.0.0.1:${port}`);

const startControlPlane = (port: number) =>
  startControlPlaneProcess({ DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken, PORT: String(port), REGIONS: `local=${redis.url}`, HEARTBEAT_MS: '200' });
const controlPlanes: ChildServer[] = [];
controlPlanes[0] = await startControlPlane(ports[0]);
controlPlanes[1] = await startControlPlane(ports[1]);
t.teardown(() => Promise.all(controlPlanes.map((controlPlane) => controlPlane.kill('SIGKILL'))));

const api = createApiClient(urls[0]!, adminToken);
await api.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
const team = (await api.request('POST', '/v1/teams', { body: { name: 'failover' } })).body;
const createKey = async (via: string, name: string) => {
  const created = await createApiClient(via, adminToken).request('POST', `/v1/teams/${team.id}/keys`, { body: { name, pools: ['direct'] } });
  if (created.status !== 201) throw new Error(`key: ${JSON.stringify(created.body)}`);
  return created.body.key as string;
};
const keys = [await createKey(urls[0]!, 'k0'), await createKey(urls[1]!, 'k1'), await createKey(urls[0]!, 'k2')];

const node = await startProxyProcess({ REGION: 'local', CONTROL_PLANE_URL: urls.join(','), NODE_TOKEN: nodeToken, REDIS_URL: redis.url, KEY_CACHE_TTL_MS: '100' });
t.teardown(() => node.kill('SIGKILL'));

/** Verify calls a control plane has answered, from its own metrics. */
async function verifyCalls(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = /^portcullis_http_request_duration_seconds_count\{[^}]*route="\/internal\/v1\/keys\/verify"[^}]*status="200"[^}]*\} (\d+)$/m.exec(text);
  return line === null ? 0 : Number(line[1]);
}

const describe = (samples: TrafficSample[]) => [...new Set(samples.map((sample) => `${sample.status} ${sample.code ?? ''}`.trim()))].join(', ');

t.test('a control plane killed under traffic costs no 503; it is used again once back', async (t) => {
  const traffic = startTraffic({ ports: () => [node.port], keyFor: (n) => keys[n % keys.length]!, url: `${origin.url}/`, concurrency: 4 });
  t.teardown(() => traffic.stop());
  await waitFor(() => traffic.samples.filter((sample) => sample.status === 200).length > 50, { what: 'traffic to flow' });
  // Cached keys are verified again every KEY_CACHE_TTL_MS, so calls reach both in time.
  const before = await waitFor(
    async () => {
      const calls = await Promise.all(urls.map(verifyCalls));
      return calls.every((count) => count > 0) && calls;
    },
    { what: 'verify calls to reach both control planes' },
  );
  t.pass(`verify calls are spread over both control planes (${before.join(' and ')})`);

  await controlPlanes[1]!.kill('SIGKILL');
  const killedAt = Date.now();
  await waitFor(() => traffic.samples.filter((sample) => sample.startedAt > killedAt).length > 100, { what: 'traffic after the kill' });
  const fresh = await createKey(urls[0]!, 'created-while-one-is-down');
  t.equal((await proxyRequest(node.port, `${origin.url}/`, bearer(fresh))).status, 200, 'a key created while one control plane is down verifies through the other');

  controlPlanes[1] = await startControlPlane(ports[1]);
  const back = await verifyCalls(urls[1]!);
  await waitFor(async () => (await verifyCalls(urls[1]!)) > back + 10, { what: 'the control plane that came back to answer verify calls again' });
  t.pass('the control plane that came back answers verify calls again');

  const samples = await traffic.stop();
  const refused = samples.filter((sample) => sample.status !== 200);
  t.equal(refused.length, 0, `every request served throughout (${samples.length} requests: ${describe(samples)})`);
});
