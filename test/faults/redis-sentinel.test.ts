import t from 'tap';
import { Redis } from 'ioredis';
import { createRedisPublisher } from '../../lib/feed/redis-bus.js';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { deadline, waitFor } from '../helpers/deadline.js';
import { startOrigin } from '../helpers/origin.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startProxyProcess } from '../helpers/processes.js';
import { startSentinelSet } from '../helpers/sentinel.js';
import { startTraffic } from '../helpers/traffic.js';

/**
 * The region's Redis is a primary and a replica under three sentinels; the relay and a node
 * process are given its `redis+sentinel://` URL. The primary is SIGKILLed under traffic.
 * Promise: Sentinel promotes the replica, the relay and the node follow it by themselves:
 * revocations reach the node through the feed again (well under the staleness bound), rate
 * limits are shared through the new primary again, and good keys are served throughout.
 */

const FEED_MS = 1_000;
const sentinel = await startSentinelSet();
t.teardown(() => sentinel.close());
const cp = await startTestControlPlane({ publishers: new Map([['local', createRedisPublisher({ url: sentinel.url, commandTimeoutMs: 500 })]]) });
t.teardown(() => cp.close());
const origin = await startOrigin();
t.teardown(() => origin.close());
await cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
const team = await cp.createTeam();
async function createKey(body: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const created = await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `key-${Math.random().toString(36).slice(2)}`, pools: ['direct'], ...body } });
  if (created.status !== 201) throw new Error(`key: ${JSON.stringify(created.body)}`);
  return { id: created.body.id, key: created.body.key };
}
const node = await startProxyProcess({ REGION: 'local', CONTROL_PLANE_URL: cp.url, NODE_TOKEN: cp.nodeToken, REDIS_URL: sentinel.url, STALENESS_BOUND_MS: '2000' });
t.teardown(() => node.kill('SIGKILL'));
const url = `${origin.url}/`;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
}

/** Milliseconds from revoking `id` until the node refuses `key`. */
async function revokedAfter({ id, key }: { id: string; key: string }): Promise<number> {
  const revokedAt = Date.now();
  const response = await cp.request('POST', `/v1/teams/${team.id}/keys/${id}/revoke`);
  if (response.status !== 200) throw new Error(`revoke: ${response.status}`);
  return waitFor(
    async () => (await proxyRequest(node.port, url, bearer(key))).headers['x-portcullis-error'] === 'key_revoked' && Date.now() - revokedAt,
    { what: 'the node to refuse the revoked key', timeoutMs: 5_000 },
  );
}

/** The node hears its feed steadily: a fresh heartbeat now and again a second later. */
async function feedSpeaks(what: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const startedAt = Date.now();
    await waitFor(async () => Date.now() - startedAt > 1_000 && (await metric('portcullis_proxy_feed_silence_seconds')) < 0.5, { what, timeoutMs: 20_000 });
  }
}

t.test('the primary SIGKILLed: Sentinel fails over, revocations and rate limits keep working', async (t) => {
  const good = await Promise.all(Array.from({ length: 4 }, () => createKey()));
  const doomed = await Promise.all(Array.from({ length: 2 }, () => createKey()));
  await feedSpeaks('the node to hear its feed through Sentinel');
  const before = await revokedAfter(doomed[0]!);
  t.ok(before < deadline(FEED_MS), `before the failover, a revocation reaches the node after ${before} ms`);

  const traffic = startTraffic({ ports: () => [node.port], keyFor: (n) => good[n % good.length]!.key, url, concurrency: 4 });
  t.teardown(() => traffic.stop());
  await waitFor(() => traffic.samples.length > 50, { what: 'traffic to flow' });
  const [primary, replica] = sentinel.servers;
  await primary.stop();
  const killedAt = Date.now();
  await waitFor(async () => (await sentinel.primaryPort()) === replica.port, { what: 'Sentinel to promote the replica', timeoutMs: 30_000 });
  t.comment(`Sentinel named the new primary ${Date.now() - killedAt} ms after the kill`);

  await feedSpeaks('the node to hear its feed through the new primary');
  const after = await revokedAfter(doomed[1]!);
  t.ok(after < deadline(FEED_MS), `after the failover, a revocation reaches the node through the feed after ${after} ms`);

  await waitFor(async () => (await metric('portcullis_proxy_rate_limiter_redis')) === 1, { what: 'rate limits to be shared through Redis again' });
  const limited = await createKey({ rateLimit: { requestsPerSecond: 1, burst: 5 } });
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await proxyRequest(node.port, url, bearer(limited.key))).status);
  t.equal(statuses.filter((status) => status === 200).length, 5, `a key with a burst of 5 gets exactly 5 of 10 quick requests (${statuses.join(' ')})`);
  const promoted = new Redis({ port: replica.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  t.teardown(() => promoted.disconnect());
  // A decision made while the limiter's connection was still moving to the new primary is
  // made locally (the same 5 of 10); the next ones must land on the promoted primary.
  await waitFor(
    async () => {
      await proxyRequest(node.port, url, bearer(limited.key));
      return (await promoted.dbsize()) > 0;
    },
    { what: 'the rate limit to be kept on the promoted primary' },
  );
  t.pass('the rate limit is kept on the promoted primary');

  const samples = await traffic.stop();
  const failed = samples.filter((sample) => sample.status !== 200);
  t.same(failed.map((sample) => `${sample.status} ${sample.code}`), [], `every one of ${samples.length} requests with good keys served through the failover`);
});
