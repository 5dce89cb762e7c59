import t from 'tap';
import pg from 'pg';
import { Redis } from 'ioredis';
import { decodeFeedMessage, FEED_CHANNEL } from '../../contract/feed.js';
import { generateToken } from '../../lib/secret-format.js';
import { createApiClient } from '../helpers/control-plane.js';
import { deadline, waitFor } from '../helpers/deadline.js';
import { inBatches } from '../helpers/batches.js';
import { startOrigin } from '../helpers/origin.js';
import { startPgCluster } from '../helpers/pg-cluster.js';
import { startProcess, startProxyProcess } from '../helpers/processes.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRedis } from '../helpers/redis.js';

/**
 * The control plane meets database faults for real: sessions killed under it, the server
 * crashing and coming back. Promise: the process never dies of it, calls in flight answer
 * 503 `database_unavailable` without a partial write, /readyz says 503 while the database
 * is unreachable, nodes serve cached keys until the staleness bound and then fail closed,
 * and everything — the API, the relay's heartbeats, the nodes — recovers by itself.
 */

const STALENESS_MS = 2_000;
const cluster = await startPgCluster();
t.teardown(() => cluster.close());
const databaseUrl = await cluster.createDatabase();
const redis = await startRedis();
t.teardown(() => redis.close());
const adminToken = generateToken();
const nodeToken = generateToken();
const controlPlane = await startProcess({
  entry: 'bin/portcullis.ts',
  args: ['control-plane'],
  env: { DATABASE_URL: databaseUrl, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken, PORT: '0', LOG_LEVEL: 'info', ADMIN_POOL_SIZE: '8', REGIONS: `eu=${redis.url}` },
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

t.test('the database crashes and comes back: /readyz 503 and nodes fail closed meanwhile, then all recovers by itself', async (t) => {
  const heartbeats: number[] = [];
  const listener = new Redis(redis.url);
  t.teardown(() => listener.disconnect());
  listener.on('message', (_channel: string, text: string) => {
    const decoded = decodeFeedMessage(text);
    if (decoded.ok && decoded.value.type === 'heartbeat') heartbeats.push(Date.now());
  });
  await listener.subscribe(FEED_CHANNEL);
  const node = await startProxyProcess({ REGION: 'eu', REDIS_URL: redis.url, CONTROL_PLANE_URL: url, NODE_TOKEN: nodeToken, STALENESS_BOUND_MS: String(STALENESS_MS) });
  t.teardown(() => node.stop());
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  await api.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'DE', url: 'direct' }] } });
  const { key } = (await api.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'cached' } })).body;
  const served = async () => {
    const response = await proxyRequest(node.port, `${origin.url}/`, bearer(key));
    return response.status === 200 ? 'served' : String(response.headers['x-portcullis-error']);
  };
  await waitFor(async () => (await served()) === 'served', { what: 'the node to serve the key' });
  await waitFor(() => heartbeats.length > 0, { what: 'heartbeats' });

  await cluster.stop('immediate');
  const stoppedAt = Date.now();
  t.equal(await served(), 'served', 'the node serves the cached key at first');
  const down = await api.request('GET', `/v1/teams/${team.id}/keys`);
  t.equal(down.status, 503);
  t.equal(down.body.error.code, 'database_unavailable');
  t.equal(down.headers.get('retry-after'), '1');
  const readiness: number[] = [];
  const failedClosedAfter = await waitFor(
    async () => {
      readiness.push((await fetch(`${url}/readyz`)).status);
      return (await served()) === 'auth_unavailable' && Date.now() - stoppedAt;
    },
    { what: 'the node to fail closed', timeoutMs: STALENESS_MS + 5_000 },
  );
  t.ok(failedClosedAfter <= deadline(STALENESS_MS + 1_000), `the node refused with 503 auth_unavailable ${failedClosedAfter} ms after the database went down (bound ${STALENESS_MS} ms)`);
  t.same([...new Set(readiness)], [503], `/readyz answered 503 from the first poll after the crash (${readiness.length} polls)`);
  t.equal(controlPlane.process.exitCode, null, 'the control plane is still running');

  await cluster.start();
  const startedAt = Date.now();
  const since = (at: number) => at - startedAt;
  const [readyAfter, heartbeatAfter, servedAfter] = await Promise.all([
    waitFor(async () => (await fetch(`${url}/readyz`)).status === 200 && since(Date.now()), { what: '/readyz to say ready again', timeoutMs: 20_000 }),
    waitFor(() => heartbeats.find((at) => at > startedAt) && since(heartbeats.find((at) => at > startedAt)!), { what: 'heartbeats to resume', timeoutMs: 20_000 }),
    waitFor(async () => (await served()) === 'served' && since(Date.now()), { what: 'the node to serve the key again', timeoutMs: 20_000 }),
  ]);
  t.comment(`after the database restart: ready in ${readyAfter} ms, heartbeats in ${heartbeatAfter} ms, node serving in ${servedAfter} ms`);
  t.ok(Math.max(readyAfter, heartbeatAfter, servedAfter) <= deadline(10_000), 'everything recovered by itself within 10 s');
  const [created] = await createKeys(1);
  t.ok(created, 'writes work again');
  const list = await api.request('GET', `/v1/teams/${team.id}/keys?limit=5`);
  t.equal(list.status, 200, 'reads work again');
  t.equal(controlPlane.process.exitCode, null);
  t.equal(node.process.exitCode, null, 'the node never died either');
});

t.test('a control plane started while its database is down waits for it, saying so once, then starts by itself', async (t) => {
  await cluster.stop('fast');
  const late = await startProcess({
    entry: 'bin/portcullis.ts',
    args: ['control-plane'],
    env: { DATABASE_URL: databaseUrl, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken, PORT: '0', LOG_LEVEL: 'info' },
    ready: /database unreachable at start-up; retrying/,
  });
  t.teardown(() => late.stop());
  await cluster.start();
  const listening = await late.waitForLog('control plane listening', undefined, 20_000);
  t.equal(late.logLines().filter((line) => line.msg === 'database unreachable at start-up; retrying').length, 1, 'it said so once');
  t.equal((await fetch(`${String(listening.url)}/readyz`)).status, 200, 'and is ready');
});
