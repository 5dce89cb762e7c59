import t from 'tap';
import { deadline, waitFor } from '../helpers/deadline.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';
import { startTraffic } from '../helpers/traffic.js';

/**
 * A region's Redis dies and comes back while traffic flows and keys are revoked, and a
 * node starts while its Redis is down. Promise: revocations bite within the staleness
 * bound in the region without Redis and within a fraction of a second elsewhere, good keys
 * keep working throughout, and the region's nodes take up the feed again by themselves.
 */

const STALENESS_MS = 2_000;
/** Revocations while the feed is healthy: a fraction of a second, well under the bound. */
const FEED_MS = 1_000;
const world = await startRegions(['us', 'eu']);
t.teardown(() => world.close());
const nodes = [await world.startNode('us', { stalenessBoundMs: STALENESS_MS }), await world.startNode('eu', { stalenessBoundMs: STALENESS_MS })];
const euRedis = world.redis.get('eu')!;
const url = `${world.origin.url}/`;

async function revoke(id: string): Promise<number> {
  const response = await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
  if (response.status !== 200) throw new Error(`revoke: ${response.status}`);
  return Date.now();
}

/** Milliseconds from the revocation until `port` refuses the key. */
async function refusedAfter(port: number, key: string, revokedAt: number, timeoutMs: number): Promise<number> {
  return waitFor(
    async () => {
      const response = await proxyRequest(port, url, bearer(key));
      return response.headers['x-portcullis-error'] === 'key_revoked' ? Date.now() - revokedAt : undefined;
    },
    { what: `port ${port} to refuse the revoked key`, timeoutMs },
  );
}

t.test("Redis of one region killed and restarted during traffic and revocations: revocations bite within the bound, traffic never stops", async (t) => {
  const good = await Promise.all(Array.from({ length: 8 }, () => world.createKey()));
  const doomed = await Promise.all(Array.from({ length: 6 }, () => world.createKey()));
  for (const node of nodes) for (const { key } of [...good, ...doomed]) await proxyRequest(node.port, url, bearer(key));
  const traffic = startTraffic({ ports: () => nodes.map((node) => node.port), keyFor: (n) => good[n % good.length]!.key, url, concurrency: 6 });

  await euRedis.stop();
  const whileDown = [];
  for (const { id, key } of doomed.slice(0, 3)) {
    const revokedAt = await revoke(id);
    whileDown.push(Math.max(...(await Promise.all(nodes.map((node) => refusedAfter(node.port, key, revokedAt, STALENESS_MS + 2_000))))));
  }
  t.ok(Math.max(...whileDown) <= deadline(STALENESS_MS + 1_000), `with eu's Redis down, refused everywhere after ${whileDown.join(', ')} ms (bound ${STALENESS_MS} ms)`);

  await euRedis.start();
  await waitFor(() => nodes[1]!.feedSilenceMs() < STALENESS_MS / 2, { what: "eu's node to hear its feed again" });
  const afterRestart = [];
  for (const { id, key } of doomed.slice(3)) {
    const revokedAt = await revoke(id);
    afterRestart.push(Math.max(...(await Promise.all(nodes.map((node) => refusedAfter(node.port, key, revokedAt, STALENESS_MS))))));
  }
  t.ok(Math.max(...afterRestart) < deadline(FEED_MS), `with Redis back, refused everywhere after ${afterRestart.join(', ')} ms`);

  const samples = await traffic.stop();
  const failed = samples.filter((sample) => sample.status !== 200);
  t.ok(samples.length > 100, `${samples.length} requests with good keys during the outage and after`);
  t.same(failed.map((sample) => `${sample.status} ${sample.code}`), [], 'every one of them served');
});

t.test("a node started while its region's Redis is down subscribes once Redis is up", async (t) => {
  await euRedis.stop();
  // Its own bound is short, so that a feed it does not hear shows soon.
  const lateBoundMs = 500;
  const late = await world.startNode('eu', { stalenessBoundMs: lateBoundMs });
  const { id, key } = await world.createKey();
  t.equal((await proxyRequest(late.port, url, bearer(key))).status, 200, 'it serves without its feed');
  t.ok(late.feedSilenceMs() > lateBoundMs, 'its feed is silent');
  await euRedis.start();
  const restartedAt = Date.now();
  // A reconnection alone resets the silence once; only a subscription keeps it low past the bound.
  await waitFor(() => Date.now() - restartedAt > lateBoundMs * 3 && late.feedSilenceMs() < lateBoundMs / 2, {
    what: 'the late node to keep hearing its feed',
    timeoutMs: 5_000,
  });
  const revokedAt = await revoke(id);
  const after = await refusedAfter(late.port, key, revokedAt, STALENESS_MS);
  t.ok(after < deadline(FEED_MS), `a revocation reaches it through the feed after ${after} ms`);
});
