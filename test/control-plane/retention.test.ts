import t from 'tap';
import { retentionStatements } from '../../control-plane/db/retention.js';
import { currentEpoch } from '../../control-plane/revocation/feed-epoch.js';
import { createInProcessBus } from '../../lib/feed/in-process-bus.js';
import { createRedisPublisher } from '../../lib/feed/redis-bus.js';
import { DEFAULT_SETTINGS, startTestControlPlane } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';
import { startRedis } from '../helpers/redis.js';

/**
 * Old rows go, in small batches, on the relay leader: usage batches, revocation acks, rows
 * of nodes long gone, and outbox rows — but never an outbox row that a region's relay
 * cursor has not passed, that a live node may still fetch, or the newest one.
 */

const DAY_MS = 86_400_000;
const redis = await startRedis();
t.teardown(() => redis.close());
const cp = await startTestControlPlane({
  publishers: new Map([
    ['local', createInProcessBus().publisher()],
    ['eu', createRedisPublisher({ url: redis.url, commandTimeoutMs: 200 })],
  ]),
  retention: { ...DEFAULT_SETTINGS.retention, intervalMs: 100, batchRows: 3 },
});
t.teardown(() => cp.close());
const team = await cp.createTeam();
const epoch = await currentEpoch(cp.adminDb);
const count = async (sql: string, params: unknown[] = []) => (await cp.adminDb.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0]!.n;
const report = (nodeId: string, appliedSeq: number, applied: { seq: number; appliedAt: number; closedConnections: number }[] = []) =>
  cp.request('POST', '/internal/v1/nodes/report', {
    token: cp.nodeToken,
    body: { nodeId, region: 'local', appliedSeq, epoch, feedSilenceMs: 0, openTunnels: 0, startedAt: Date.now(), applied },
  });

t.test('usage batches, acks and node rows past their retention are deleted by the leader, recent ones kept', async (t) => {
  const key = (await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'metered' } })).body;
  for (let batch = 1; batch <= 10; batch++) {
    const entries = [{ keyId: key.id, teamId: team.id, bytesIn: 1, bytesOut: 1, requests: 1, tunnels: 0 }];
    t.equal((await cp.request('POST', '/internal/v1/usage', { token: cp.nodeToken, body: { nodeId: 'node-old', batch, entries } })).status, 200);
  }
  await cp.adminDb.query(`UPDATE usage_batches SET received_at = now() - interval '8 days' WHERE batch <= 8`);
  await report('node-gone', 0, [{ seq: 1, appliedAt: Date.now() - 8 * DAY_MS, closedConnections: 0 }]);
  await report('node-live', 0, [{ seq: 1, appliedAt: Date.now(), closedConnections: 0 }]);
  await cp.adminDb.query(`UPDATE nodes SET last_seen_at = now() - interval '2 days' WHERE id = 'node-gone'`);

  t.ok(cp.relay.isLeader(), 'this control plane leads the relay');
  await waitFor(async () => (await count('usage_batches')) === 2, { what: 'the periodic run to delete the old usage batches' });
  t.same((await cp.adminDb.query<{ batch: number }>('SELECT batch FROM usage_batches ORDER BY batch')).rows.map((row) => row.batch), [9, 10], 'the recent batches are kept');
  await waitFor(async () => (await count('revocation_acks')) === 1 && (await count('nodes')) === 1, { what: 'the old ack and node row to go' });
  t.same((await cp.adminDb.query<{ id: string }>('SELECT id FROM nodes')).rows, [{ id: 'node-live' }], 'the live node stays');
});

t.test('outbox rows are kept while a region or a live node still needs them, and the newest always', async (t) => {
  await redis.stop();
  const keys = await Promise.all(Array.from({ length: 6 }, (_, i) => cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `revoked-${i}` } })));
  for (const key of keys) await cp.request('POST', `/v1/teams/${team.id}/keys/${key.body.id}/revoke`);
  const seqs = (await cp.adminDb.query<{ seq: number }>('SELECT seq FROM outbox ORDER BY seq')).rows.map((row) => row.seq);
  await cp.adminDb.query(`UPDATE outbox SET created_at = now() - interval '8 days'`);
  await report('node-live', seqs[2]!);
  await cp.retention.run();
  t.equal(await count('outbox'), seqs.length, "nothing goes while eu's Redis is down: its cursor has not passed them");

  await redis.start();
  await waitFor(async () => (await cp.adminDb.query<{ seq: number }>(`SELECT seq FROM relay_cursors WHERE region = 'eu'`)).rows[0]?.seq === seqs.at(-1), {
    what: 'the relay to deliver the backlog to eu',
  });
  await cp.retention.run();
  t.same((await cp.adminDb.query<{ seq: number }>('SELECT seq FROM outbox ORDER BY seq')).rows.map((row) => row.seq), seqs.slice(3), 'rows after what a live node applied are kept');

  await report('node-live', seqs.at(-1)!);
  await cp.retention.run();
  t.same((await cp.adminDb.query<{ seq: number }>('SELECT seq FROM outbox ORDER BY seq')).rows.map((row) => row.seq), [seqs.at(-1)], 'the newest row stays: the latest seq is read from it');
  const status = await cp.request('GET', '/internal/v1/revocations?after=0&limit=10', { token: cp.nodeToken });
  t.equal(status.body.latestSeq, seqs.at(-1), 'nodes still learn the latest seq');
});

t.test('each retention statement finds its rows through an index', async (t) => {
  const statements = retentionStatements({ settings: DEFAULT_SETTINGS.retention, regions: ['local', 'eu'], nodeLivenessMs: 10_000 });
  const expected: Record<string, string> = {
    usage_batches: 'usage_batches_received',
    revocation_acks: 'revocation_acks_applied',
    nodes: 'nodes_last_seen',
    outbox: 'outbox_pkey',
  };
  for (const statement of statements) {
    const plan = await cp.adminDb.transaction(async (tx) => {
      // The tables are small here; the planner must still have an index path, not only a scan.
      await tx.query('SET LOCAL enable_seqscan = off');
      const { rows } = await tx.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${statement.sql}`, [1000, statement.retentionMs, ...statement.params]);
      return JSON.stringify(rows[0]!['QUERY PLAN']);
    });
    t.match(plan, new RegExp(`"Index Name":\\s*"${expected[statement.table]}"`), `${statement.table}: through ${expected[statement.table]}`);
  }
});
