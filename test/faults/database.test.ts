import t from 'tap';
import pg from 'pg';
import { generateToken } from '../../lib/secret-format.js';
import { createApiClient } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';
import { inBatches } from '../helpers/batches.js';
import { startPgCluster } from '../helpers/pg-cluster.js';
import { startProcess } from '../helpers/processes.js';

/**
 * The control plane meets database faults for real: sessions killed under it, the server
 * crashing and coming back. Promise: the process never dies of it, calls in flight answer
 * 503 `database_unavailable` without a partial write, /readyz says 503 while the database
 * is unreachable, and everything recovers by itself.
 */

const cluster = await startPgCluster();
t.teardown(() => cluster.close());
const databaseUrl = await cluster.createDatabase();
const adminToken = generateToken();
const controlPlane = await startProcess({
  entry: 'bin/portcullis.ts',
  args: ['control-plane'],
  env: { DATABASE_URL: databaseUrl, ADMIN_TOKEN: adminToken, NODE_TOKEN: generateToken(), PORT: '0', LOG_LEVEL: 'info', ADMIN_POOL_SIZE: '8' },
  ready: /control plane listening/,
});
t.teardown(() => controlPlane.stop());
const url = String((await controlPlane.waitForLog('control plane listening')).url);
const api = createApiClient(url, adminToken);

const team = (await api.request('POST', '/v1/teams', { body: { name: 'faults' } })).body;

async function createKeys(count: number): Promise<string[]> {
  const ids: string[] = [];
  await inBatches(Array.from({ length: count }, (_, i) => i), 25, async (i) => {
    const created = await api.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `key-${Date.now()}-${i}` } });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
    ids.push(created.body.id);
  });
  return ids;
}

/** Per key: revoked in the row, in the activity log, in the outbox — all three or none. */
async function revocationRecords(ids: string[]): Promise<Map<string, [boolean, boolean, boolean]>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; revoked: boolean; logged: boolean; published: boolean }>(
      `SELECT k.id, k.status = 'revoked' AS revoked,
              EXISTS (SELECT 1 FROM activity a WHERE a.target_id = k.id AND a.action = 'key.revoked') AS logged,
              EXISTS (SELECT 1 FROM outbox o WHERE o.key_id = k.id AND o.kind = 'key.revoked') AS published
       FROM api_keys k WHERE k.id = ANY($1)`,
      [ids],
    );
    return new Map(rows.map((row) => [row.id, [row.revoked, row.logged, row.published]]));
  } finally {
    await client.end();
  }
}

t.test('sessions terminated during a burst of revocations: the process lives, failed calls answer 503 and write nothing', async (t) => {
  const ids = await createKeys(150);
  const answers = new Map<string, { status: number; code?: string }>();
  let killed = 0;
  const burst = inBatches(ids, 25, async (id) => {
    const response = await api.request('POST', `/v1/teams/${team.id}/keys/${id}/revoke`);
    answers.set(id, { status: response.status, code: response.body?.error?.code });
  });
  // Kill the control plane's sessions again and again while the burst runs.
  while (answers.size < ids.length) {
    killed += await cluster.terminateSessions('portcullis%');
    await waitFor(() => answers.size >= Math.min(ids.length, killed * 5) || answers.size === ids.length, { what: 'the burst to make progress' });
  }
  await burst;
  t.ok(killed > 0, `${killed} sessions terminated during the burst`);
  t.equal(controlPlane.process.exitCode, null, 'the control plane is still running');
  const failed = [...answers].filter(([, answer]) => answer.status !== 200);
  t.same(new Set(failed.map(([, answer]) => `${answer.status} ${answer.code}`)), new Set(failed.length > 0 ? ['503 database_unavailable'] : []), 'every failed call answered 503 database_unavailable');
  const records = await revocationRecords(ids);
  for (const [id, [revoked, logged, published]] of records) {
    if (revoked !== logged || revoked !== published) t.fail(`key ${id}: revoked=${revoked} logged=${logged} published=${published}`);
    if (answers.get(id)!.status === 200 && !revoked) t.fail(`key ${id} answered 200 but is not revoked`);
  }
  t.pass('no partial write: status, activity entry and outbox event agree for every key');
  for (const [id] of failed) {
    const again = await waitFor(
      async () => {
        const response = await api.request('POST', `/v1/teams/${team.id}/keys/${id}/revoke`);
        return response.status === 200 && response;
      },
      { what: `revoking ${id} to succeed once the sessions are back` },
    );
    t.equal(again.body.status, 'revoked');
  }
});

t.test('the database crashes and comes back: /readyz says 503 meanwhile, calls answer 503, then all recovers by itself', async (t) => {
  await cluster.stop('immediate');
  const down = await api.request('GET', `/v1/teams/${team.id}/keys`);
  t.equal(down.status, 503);
  t.equal(down.body.error.code, 'database_unavailable');
  t.equal(down.headers.get('retry-after'), '1');
  const ready = await fetch(`${url}/readyz`);
  t.equal(ready.status, 503, '/readyz says the database is unreachable');
  t.equal(controlPlane.process.exitCode, null, 'the control plane is still running');
  await cluster.start();
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { what: '/readyz to say ready again' });
  const [created] = await createKeys(1);
  t.ok(created, 'writes work again');
  const list = await api.request('GET', `/v1/teams/${team.id}/keys?limit=5`);
  t.equal(list.status, 200, 'reads work again');
  t.equal(controlPlane.process.exitCode, null);
});
