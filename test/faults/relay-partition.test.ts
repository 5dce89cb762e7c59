import t from 'tap';
import { Redis } from 'ioredis';
import { decodeFeedMessage, FEED_CHANNEL } from '../../contract/feed.js';
import { generateToken } from '../../lib/secret-format.js';
import { createApiClient } from '../helpers/control-plane.js';
import { deadline, waitFor } from '../helpers/deadline.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startControlPlaneProcess } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis.js';
import { startTcpSwitch } from '../helpers/tcp-switch.js';

/**
 * The relay leader is cut off from PostgreSQL by a network partition: its packets vanish,
 * nothing tells it so. Promise: the partition does not hang the relay while it keeps the
 * leader lock — within its lease (RELAY_LEASE_MS) it gives up, the server ends its session,
 * another instance takes over and heartbeats and revocations flow again; once the partition
 * heals, the old leader comes back as a follower.
 */

const LEASE_MS = 1_000;
const database = await createTestDatabase();
t.teardown(() => database.drop());
const link = await startTcpSwitch(5432);
t.teardown(() => link.close());
const redis = await startRedis();
t.teardown(() => redis.close());

const heartbeats: { at: number; seq: number }[] = [];
const events: number[] = [];
const listener = new Redis(redis.url);
t.teardown(() => listener.disconnect());
listener.on('message', (_channel: string, text: string) => {
  const decoded = decodeFeedMessage(text);
  if (!decoded.ok) return;
  if (decoded.value.type === 'heartbeat') heartbeats.push({ at: Date.now(), seq: decoded.value.seq });
  else events.push(decoded.value.seq);
});
await listener.subscribe(FEED_CHANNEL);

const adminToken = generateToken();
const env = {
  ADMIN_TOKEN: adminToken,
  NODE_TOKEN: generateToken(),
  REGIONS: `us=${redis.url}`,
  HEARTBEAT_MS: '100',
  RELAY_POLL_MS: '200',
  RELAY_LEASE_MS: String(LEASE_MS),
};
const behindLink = new URL(database.url);
behindLink.port = String(link.port);
const first = await startControlPlaneProcess({ ...env, DATABASE_URL: behindLink.toString() });
t.teardown(() => first.stop());
await first.waitForLog('relay leadership taken');
const second = await startControlPlaneProcess({ ...env, DATABASE_URL: database.url });
t.teardown(() => second.stop());
const api = createApiClient(second.url, adminToken);

t.test('a partition between the relay leader and PostgreSQL: another instance takes over within the lease, then the old one follows', async (t) => {
  await waitFor(() => heartbeats.length >= 5, { what: 'heartbeats from the first leader' });
  t.notOk(second.logLines().some((line) => line.msg === 'relay leadership taken'), 'the second instance waits as a follower');

  link.partition();
  const partitionedAt = Date.now();
  const resumed = await waitFor(() => heartbeats.find((heartbeat) => heartbeat.at > partitionedAt + 200), {
    what: 'heartbeats to resume from another instance',
    timeoutMs: LEASE_MS + 5_000,
  });
  const takeoverMs = resumed.at - partitionedAt;
  t.ok(await second.waitForLog('relay leadership taken'), 'the second instance took the lead');
  t.ok(takeoverMs <= deadline(2 * LEASE_MS + 1_500), `heartbeats resumed ${takeoverMs} ms after the partition (lease ${LEASE_MS} ms)`);
  t.comment(`relay takeover after a partition: ${takeoverMs} ms`);
  t.ok(await first.waitForLog('relay leadership lost with its database connection'), 'the partitioned leader gave up rather than hang');

  const team = (await api.request('POST', '/v1/teams', { body: { name: 'partition' } })).body;
  const key = (await api.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'partition' } })).body;
  const revoked = await api.request('POST', `/v1/teams/${team.id}/keys/${key.id}/revoke`);
  t.equal(revoked.status, 200);
  const { seq } = (await api.request('GET', `/v1/teams/${team.id}/keys/${key.id}/revocation`)).body;
  await waitFor(() => events.includes(seq), { what: 'the revocation to be published by the new leader' });
  t.pass('revocations are published during the partition');

  link.heal();
  await first.waitForLog('relay uses the database again', undefined, 20_000);
  const healedAt = Date.now();
  await waitFor(() => heartbeats.some((heartbeat) => heartbeat.at > healedAt + 500), { what: 'heartbeats after the heal' });
  // On a loaded machine the new leader may itself lose its session, and then the old one may
  // lead again; what must never happen is the old leader taking over from a healthy one.
  const count = (server: typeof first, msg: string) => server.logLines().filter((line) => line.msg === msg).length;
  const newLeaderLost = count(second, 'relay leadership lost with its database connection');
  t.ok(count(first, 'relay leadership taken') <= 1 + newLeaderLost, 'the old leader came back as a follower');
  t.equal(first.process.exitCode, null, 'and never died');
});
