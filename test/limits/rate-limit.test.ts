import t from 'tap';
import http from 'node:http';
import { waitFor } from '../helpers/deadline.js';
import { metricValue } from '../helpers/metrics.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';

const world = await startRegions(['eu']);
t.teardown(() => world.close());
const nodes = [await world.startNode('eu'), await world.startNode('eu'), await world.startNode('eu')];
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
t.teardown(() => agent.destroy());
const LIMIT = 50;

/** Clients hammer every node with the key for `seconds`; returns accepted and refused counts. */
async function hammer(key: string, seconds: number): Promise<{ accepted: number; refused: number; other: number; others: string[] }> {
  const counts = { accepted: 0, refused: 0, other: 0, others: [] as string[] };
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 12 }, async (_, i) => {
      const node = nodes[i % nodes.length]!;
      while (Date.now() < end) {
        const response = await proxyRequest(node.port, `${world.origin.url}/`, bearer(key), { agent }).catch((error: NodeJS.ErrnoException) => error);
        if (response instanceof Error) {
          counts.other++;
          counts.others.push(`client error ${response.code ?? response.message}`);
        } else if (response.status === 200) counts.accepted++;
        else if (response.headers['x-portcullis-error'] === 'rate_limited') counts.refused++;
        else {
          counts.other++;
          counts.others.push(`${response.status} ${String(response.headers['x-portcullis-error'])}`);
        }
      }
    }),
  );
  return counts;
}

// Every node must know the region has three nodes before the Redis-down phase.
await waitFor(
  async () => (await world.cp.request('GET', '/healthz')).status === 200 && (await world.cp.adminDb.query(`SELECT 1 FROM nodes WHERE region = 'eu'`)).rowCount === 3,
  { what: 'three nodes reporting' },
);

const { key } = await world.createKey({ rateLimit: { requestsPerSecond: LIMIT, burst: 5 } });

t.test('three nodes, 50 req/s: accepted rate within ±10% over a 10 s window', async (t) => {
  const first = await proxyRequest(nodes[0]!.port, `${world.origin.url}/`, bearer(key), { agent });
  t.equal(first.headers['x-ratelimit-limit'], String(LIMIT), 'X-RateLimit-Limit on the response');
  t.ok(first.headers['x-ratelimit-remaining'] !== undefined && first.headers['x-ratelimit-reset'] !== undefined);
  const { accepted, refused, other, others } = await hammer(key, 10);
  const rate = accepted / 10;
  t.ok(rate >= LIMIT * 0.9 && rate <= LIMIT * 1.1, `${rate.toFixed(1)} req/s accepted (${refused} refused)`);
  t.equal(other, 0, `nothing but 200 and 429 rate_limited${other === 0 ? '' : `: ${others.slice(0, 5).join(', ')}`}`);
  const refusal = await proxyRequest(nodes[1]!.port, `${world.origin.url}/`, bearer(key), { agent });
  if (refusal.status === 429) {
    t.ok(Number(refusal.headers['retry-after']) >= 1, 'Retry-After on 429');
    t.equal(refusal.headers['x-ratelimit-remaining'], '0');
  }
});

t.test('with Redis killed the limit holds within ±50%, and within ±10% once it is back', async (t) => {
  const redis = world.redis.get('eu')!;
  await redis.stop();
  const down = await hammer(key, 5);
  const downRate = down.accepted / 5;
  t.ok(downRate >= LIMIT * 0.5 && downRate <= LIMIT * 1.5, `${downRate.toFixed(1)} req/s accepted while Redis is down`);
  for (const node of nodes) t.equal(await metricValue(node.metrics.registry, 'portcullis_proxy_rate_limiter_redis'), 0, `${node.nodeId} reports local mode`);
  await redis.start();
  // Every node back on Redis before the window opens: a node still limiting locally would blur it.
  await Promise.all(
    nodes.map((node) =>
      waitFor(
        async () => {
          await proxyRequest(node.port, `${world.origin.url}/`, bearer(key), { agent });
          return (await metricValue(node.metrics.registry, 'portcullis_proxy_rate_limiter_redis')) === 1;
        },
        { what: `${node.nodeId}'s limiter to return to Redis`, timeoutMs: 5_000 },
      ),
    ),
  );
  const back = await hammer(key, 10);
  const backRate = back.accepted / 10;
  t.ok(backRate >= LIMIT * 0.9 && backRate <= LIMIT * 1.1, `${backRate.toFixed(1)} req/s accepted after Redis is back`);
});
