import t from 'tap';
import pg from 'pg';
import { sha256Hex } from '../../lib/hash.js';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';

const cp = await startTestControlPlane({
  adminPool: { maxConnections: 2, statementTimeoutMs: 30_000, connectionTimeoutMs: 30_000 },
  nodePool: { maxConnections: 2, statementTimeoutMs: 5_000, connectionTimeoutMs: 5_000 },
});
t.teardown(() => cp.close());
const team = await cp.createTeam();
const created = await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'hot' } });
const verifyBody = { hashes: [sha256Hex(created.body.key)] };

t.test('node-API verify stays fast while the admin pool is saturated by slow list calls', async (t) => {
  // A lock on `teams` stalls every admin list call (they check the team first) without
  // touching the tables verification reads, standing in for slow admin queries.
  const blocker = new pg.Client({ connectionString: cp.database.url });
  await blocker.connect();
  t.teardown(() => blocker.end());
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE teams IN ACCESS EXCLUSIVE MODE');

  const slowLists = Array.from({ length: 20 }, () => cp.request('GET', `/v1/teams/${team.id}/keys`));
  await waitFor(() => cp.adminDb.stats().waiting >= 10, { what: 'admin pool saturated with queued list calls' });

  const latencies: number[] = [];
  const answers = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const started = performance.now();
    const response = await cp.request('POST', '/internal/v1/keys/verify', { token: cp.nodeToken, body: verifyBody });
    latencies.push(performance.now() - started);
    answers.add(`${response.status} ${response.body.keys?.[verifyBody.hashes[0]!]?.id}`);
  }
  t.same([...answers], [`200 ${created.body.id}`], 'every verify answered with the key');
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.floor(latencies.length * 0.99) - 1]!;
  t.ok(p99 < 100, `verify p99 ${p99.toFixed(1)} ms with ${cp.adminDb.stats().waiting} admin calls queued`);
  t.ok(cp.adminDb.stats().waiting >= 10, 'admin pool still saturated during the measurement');

  await blocker.query('COMMIT');
  const lists = await Promise.all(slowLists);
  t.ok(lists.every((response) => response.status === 200), 'the stalled admin calls complete once the lock is gone');
});
