import t from 'tap';
import http from 'node:http';
import { createRelay } from '../../control-plane/revocation/relay.js';
import { createRedisPublisher } from '../../lib/feed/redis-bus.js';
import { createLogger } from '../../lib/logger.js';
import { deadline, waitFor } from '../helpers/deadline.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';
import { inBatches } from '../helpers/batches.js';

const KEYS = 1_000;
const STALENESS_MS = 2_000;
const world = await startRegions(['us', 'eu', 'ap']);
t.teardown(() => world.close());
const nodes = await Promise.all(['us', 'eu', 'ap'].map((region) => world.startNode(region, { stalenessBoundMs: STALENESS_MS })));
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
t.teardown(() => agent.destroy());

t.test('1,000 keys revoked in a burst, with the relay restarted midway: none works anywhere after the bound', async (t) => {
  const keys: { id: string; key: string }[] = [];
  await inBatches(Array.from({ length: KEYS }), 25, async () => keys.push(await world.createKey()));
  // Every node caches every key first, so a missed revocation would show.
  for (const node of nodes) {
    await inBatches(keys, 50, async ({ key }) => {
      const response = await proxyRequest(node.port, `${world.origin.url}/`, bearer(key), { agent });
      if (response.status !== 200) throw new Error(`warm-up: ${response.status}`);
    });
  }

  const started = Date.now();
  let restarted = false;
  let revoked = 0;
  await inBatches(keys, 20, async ({ id }) => {
    const response = await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
    if (response.status !== 200) throw new Error(`revoke: ${response.status}`);
    revoked++;
    if (revoked >= KEYS / 2 && !restarted) {
      restarted = true;
      await world.cp.relay.close();
      const relay = await createRelay({
        db: world.cp.adminDb,
        publishers: new Map([...world.redis].map(([region, redis]) => [region, createRedisPublisher({ url: redis.url })])),
        heartbeatMs: 100,
        pollMs: 250,
        leaseMs: 5_000,
        logger: createLogger({ level: 'silent', name: 'relay' }),
        metrics: { published: () => {}, publishFailed: () => {}, lag: () => {} },
      });
      t.teardown(() => relay.close());
    }
  });
  const burstMs = Date.now() - started;

  const { rows } = await world.cp.adminDb.query<{ seq: number }>('SELECT max(seq) AS seq FROM outbox');
  const lastSeq = rows[0]!.seq;
  await waitFor(() => nodes.every((node) => node.appliedSeq() >= lastSeq), {
    what: 'every node to apply every revocation',
    timeoutMs: STALENESS_MS + 2_000,
  });
  const appliedAfter = Date.now() - started - burstMs;
  t.ok(appliedAfter <= deadline(STALENESS_MS + 1_000), `all applied ${appliedAfter} ms after the burst (${burstMs} ms long)`);

  // The relay records a region's cursor just after publishing to it, so nodes may be a moment ahead.
  await waitFor(
    async () => {
      const cursors = await world.cp.adminDb.query<{ seq: number }>('SELECT seq FROM relay_cursors');
      return cursors.rows.length === 3 && cursors.rows.every((row) => row.seq === lastSeq);
    },
    { what: 'the restarted relay to record every region as delivered', timeoutMs: 2_000 },
  );
  t.pass('the restarted relay delivered everything to every region');

  let stillWorking = 0;
  for (const node of nodes) {
    await inBatches(keys, 50, async ({ key }) => {
      const response = await proxyRequest(node.port, `${world.origin.url}/`, bearer(key), { agent });
      if (response.status === 200) stillWorking++;
    });
  }
  t.equal(stillWorking, 0, 'no revoked key works on any node');
});
