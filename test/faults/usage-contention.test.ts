import t from 'tap';
import pg from 'pg';
import { generateToken } from '../../lib/secret-format.js';
import { inBatches } from '../helpers/batches.js';
import { createApiClient } from '../helpers/control-plane.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startControlPlaneProcess } from '../helpers/processes.js';
import { reportConcurrently } from '../helpers/usage-contention.js';

/**
 * Two nodes report usage for the same quota'd keys every 100 ms, at the same moments.
 * Promise: no batch fails (no deadlock between them, no `database_busy`), and the totals
 * are exact. `npm run bench:usage-contention` runs the same for 30 s.
 */

const database = await createTestDatabase();
t.teardown(() => database.drop());
const adminToken = generateToken();
const nodeToken = generateToken();
const controlPlane = await startControlPlaneProcess({ DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken });
t.teardown(() => controlPlane.stop());
const api = createApiClient(controlPlane.url, adminToken);

t.test('two nodes reporting for the same quota\'d keys every 100 ms: no deadlock, exact totals', async (t) => {
  const team = (await api.request('POST', '/v1/teams', { body: { name: 'contention' } })).body;
  await api.request('PATCH', `/v1/teams/${team.id}`, { body: { monthlyQuotaBytes: 1_000_000_000 } });
  const keys: { id: string; teamId: string }[] = [];
  await inBatches(Array.from({ length: 40 }, (_, i) => i), 10, async (i) => {
    const created = await api.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `key-${i}`, ...(i % 4 !== 3 && { monthlyQuotaBytes: 1_000_000_000 }) } });
    keys.push({ id: created.body.id, teamId: team.id });
  });

  const result = await reportConcurrently({ controlPlaneUrl: controlPlane.url, nodeToken, keys, nodeIds: ['node-a', 'node-b'], intervalMs: 100, durationMs: 5_000 });
  t.ok(result.batches >= 20, `${result.batches} batches sent`);
  t.same(Object.fromEntries(result.failures), {}, 'no batch failed');

  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  t.teardown(() => client.end());
  const { rows } = await client.query<{ subject_id: string; bytes: string }>(`SELECT subject_id, bytes FROM usage_monthly WHERE subject_type = 'key'`);
  const stored = new Map(rows.map((row) => [row.subject_id, Number(row.bytes)]));
  t.same(stored, result.sent, 'every key\'s monthly total is exactly what was reported');
  const team_ = await client.query<{ bytes: string }>(`SELECT bytes FROM usage_monthly WHERE subject_type = 'team' AND subject_id = $1`, [team.id]);
  t.equal(Number(team_.rows[0]!.bytes), [...result.sent.values()].reduce((sum, bytes) => sum + bytes, 0), 'and so is the team\'s');
});
