import t from 'tap';
import http from 'node:http';
import { Redis } from 'ioredis';
import { decodeFeedMessage, FEED_CHANNEL } from '../../contract/feed.js';
import { createPgDatabase } from '../../control-plane/db/pg-database.js';
import { sha256Hex } from '../../lib/hash.js';
import { generateToken } from '../../lib/secret-format.js';
import { inBatches } from '../helpers/batches.js';
import { createApiClient } from '../helpers/control-plane.js';
import { deadline, waitFor } from '../helpers/deadline.js';
import { startOrigin } from '../helpers/origin.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startControlPlaneProcess, startProxyProcess } from '../helpers/processes.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRedis } from '../helpers/redis.js';
import { seedUsableKeys } from '../helpers/seed-keys.js';
import { startTraffic } from '../helpers/traffic.js';

/**
 * Two control plane processes on one database share the relay by an advisory lock. The
 * leader is SIGKILLed in the middle of a burst of revocations, with traffic flowing.
 * Promise: PostgreSQL ends the dead session and frees the lock, the other instance takes the
 * lead within 1 s (it tries the lock every RELAY_POLL_MS: 250 ms here, 500 by default), every revocation reaches the feed and every node refuses its key, and no
 * revoked key is served past the staleness bound.
 */

const KEYS = 300;
const STALENESS_MS = 2_000;
const TAKEOVER_MS = 1_000;

const database = await createTestDatabase();
t.teardown(() => database.drop());
const redis = await startRedis();
t.teardown(() => redis.close());
const origin = await startOrigin();
t.teardown(() => origin.close());

const published = new Set<number>();
const heartbeats: number[] = [];
const listener = new Redis(redis.url);
t.teardown(() => listener.disconnect());
listener.on('message', (_channel: string, text: string) => {
  const decoded = decodeFeedMessage(text);
  if (!decoded.ok) return;
  if (decoded.value.type === 'heartbeat') heartbeats.push(Date.now());
  else published.add(decoded.value.seq);
});
await listener.subscribe(FEED_CHANNEL);

const adminToken = generateToken();
const nodeToken = generateToken();
const env = { DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken, REGIONS: `local=${redis.url}`, HEARTBEAT_MS: '200', RELAY_POLL_MS: '250' };
const leader = await startControlPlaneProcess(env);
t.teardown(() => leader.kill('SIGKILL'));
await leader.waitForLog('relay leadership taken');
const follower = await startControlPlaneProcess(env);
t.teardown(() => follower.stop());

// Everything that must outlive the leader talks to the follower: the API and the node.
const api = createApiClient(follower.url, adminToken);
await api.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
const team = (await api.request('POST', '/v1/teams', { body: { name: 'failover' } })).body;
const db = createPgDatabase({ url: database.url, applicationName: 'test', maxConnections: 2, statementTimeoutMs: 10_000, connectionTimeoutMs: 10_000 });
t.teardown(() => db.close());
const secrets = await seedUsableKeys(db, team.id, KEYS);
const { rows } = await db.query<{ id: string; hash: string }>("SELECT id, encode(key_hash, 'hex') AS hash FROM api_keys WHERE team_id = $1", [team.id]);
const idOf = new Map(rows.map((row) => [row.hash, row.id]));
const keys = secrets.map((key) => ({ key, id: idOf.get(sha256Hex(key))! }));
const node = await startProxyProcess({ REGION: 'local', CONTROL_PLANE_URL: follower.url, NODE_TOKEN: nodeToken, REDIS_URL: redis.url, STALENESS_BOUND_MS: String(STALENESS_MS) });
t.teardown(() => node.kill('SIGKILL'));

t.test('the relay leader SIGKILLed during a revocation burst: the other instance leads within 1 s, nothing lost, nothing served past the bound', async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  t.teardown(() => agent.destroy());
  await inBatches(keys, 50, async ({ key }) => {
    const response = await proxyRequest(node.port, `${origin.url}/warm`, bearer(key), { agent });
    if (response.status !== 200) throw new Error(`warm-up: ${response.status}`);
  });
  t.notOk(follower.logLines().some((line) => line.msg === 'relay leadership taken'), 'the second instance starts as a follower');

  const traffic = startTraffic({ ports: () => [node.port], keyFor: (n) => keys[(n * 7) % KEYS]!.key, url: `${origin.url}/`, concurrency: 4 });
  t.teardown(() => traffic.stop());
  await waitFor(() => traffic.samples.length > 50, { what: 'traffic to flow' });

  const revokedAt = new Map<string, number>();
  let killedAt: number | undefined;
  let killing: Promise<unknown> | undefined;
  await inBatches(keys, 10, async ({ key, id }) => {
    const response = await api.request('POST', `/v1/teams/${team.id}/keys/${id}/revoke`);
    if (response.status !== 200) throw new Error(`revoke: ${response.status} ${JSON.stringify(response.body)}`);
    revokedAt.set(key, Date.now());
    if (killedAt === undefined && revokedAt.size >= KEYS / 3) {
      killedAt = Date.now();
      killing = leader.kill('SIGKILL');
    }
  });
  const burstEnded = Date.now();
  t.same(await killing, { code: null, signal: 'SIGKILL' }, `the leader was killed after ${KEYS / 3} of ${KEYS} revocations`);

  const taken = await follower.waitForLog('relay leadership taken');
  const takeoverMs = Number(taken.time) - killedAt!;
  t.ok(takeoverMs <= deadline(TAKEOVER_MS), `the follower took the lead ${takeoverMs} ms after the kill (bound ${TAKEOVER_MS} ms)`);
  t.comment(`relay takeover after SIGKILL of the leader: ${takeoverMs} ms`);
  const silences = heartbeats.slice(1).map((at, i) => at - heartbeats[i]!);
  t.comment(`longest gap between heartbeats: ${Math.max(...silences)} ms`);

  const { rows: events } = await db.query<{ seq: number }>("SELECT seq FROM outbox WHERE kind = 'key.revoked' AND team_id = $1", [team.id]);
  t.equal(events.length, KEYS, 'every revocation is in the outbox');
  await waitFor(() => events.every((event) => published.has(Number(event.seq))), { what: 'every revocation to reach the feed' });
  t.pass(`all ${KEYS} revocations published, before and after the takeover`);

  const refused = new Set<string>();
  await waitFor(
    async () => {
      await inBatches(
        keys.filter(({ key }) => !refused.has(key)),
        50,
        async ({ key }) => {
          const response = await proxyRequest(node.port, `${origin.url}/check`, bearer(key), { agent });
          if (response.headers['x-portcullis-error'] === 'key_revoked') refused.add(key);
        },
      );
      return refused.size === KEYS;
    },
    { what: 'the node to refuse every revoked key', timeoutMs: STALENESS_MS + 5_000 },
  );
  t.pass(`the node refuses all ${KEYS} revoked keys`);

  await waitFor(() => traffic.samples.some((sample) => sample.startedAt > burstEnded + STALENESS_MS), { what: 'traffic past the bound after the burst' });
  const samples = await traffic.stop();
  const servedAfter = samples.filter((sample) => sample.status === 200 && revokedAt.has(sample.key)).map((sample) => sample.startedAt - revokedAt.get(sample.key)!);
  t.ok(samples.length > 100, `${samples.length} requests during the burst and takeover`);
  t.equal(servedAfter.filter((ms) => ms > STALENESS_MS).length, 0, `no revoked key served past the ${STALENESS_MS} ms bound (latest: ${Math.max(0, ...servedAfter)} ms after its revocation answered)`);
});
