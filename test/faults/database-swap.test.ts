import t, { type Test } from 'tap';
import { generateToken } from '../../lib/secret-format.js';
import { inBatches } from '../helpers/batches.js';
import { createApiClient, type ApiClient } from '../helpers/control-plane.js';
import { deadline, waitFor } from '../helpers/deadline.js';
import { startOrigin } from '../helpers/origin.js';
import { startPgCluster } from '../helpers/pg-cluster.js';
import { freePort } from '../helpers/ports.js';
import { startControlPlaneProcess, startProxyProcess, type ControlPlaneProcess } from '../helpers/processes.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRedis } from '../helpers/redis.js';

/**
 * The database under running nodes is replaced by an older copy of itself — restored from
 * a backup into a new database under a fresh control plane, then its files put back from a
 * volume snapshot under a running one — so the outbox's seqs go backwards. Promise: every
 * node starts over in a new feed epoch, a key revoked in the restored database is refused
 * by every node within the staleness bound, and the revocation status says `complete` only
 * when that is true.
 */

const STALENESS_MS = 2_000;
const cluster = await startPgCluster();
t.teardown(() => cluster.close());
const regions = new Map([
  ['us', await startRedis()],
  ['eu', await startRedis()],
]);
t.teardown(() => Promise.all([...regions.values()].map((redis) => redis.close())));
const origin = await startOrigin();
t.teardown(() => origin.close());

const adminToken = generateToken();
const nodeToken = generateToken();
// Nodes know their control plane by one address; each control plane of this test takes it in turn.
const port = await freePort();
const controlPlaneEnv = {
  ADMIN_TOKEN: adminToken,
  NODE_TOKEN: nodeToken,
  PORT: String(port),
  REGIONS: [...regions].map(([region, redis]) => `${region}=${redis.url}`).join(','),
};
const liveUrl = await cluster.createDatabase();
let controlPlane: ControlPlaneProcess = await startControlPlaneProcess({ ...controlPlaneEnv, DATABASE_URL: liveUrl });
t.teardown(() => controlPlane.stop());
const api: ApiClient = createApiClient(controlPlane.url, adminToken);
await api.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'DE', url: 'direct' }] } });
const team = (await api.request('POST', '/v1/teams', { body: { name: 'swapped' } })).body;

const nodes = await Promise.all(
  [...regions].map(([region, redis]) =>
    startProxyProcess({ REGION: region, REDIS_URL: redis.url, CONTROL_PLANE_URL: controlPlane.url, NODE_TOKEN: nodeToken, STALENESS_BOUND_MS: String(STALENESS_MS) }),
  ),
);
t.teardown(() => Promise.all(nodes.map((node) => node.stop())));

async function createKeys(count: number): Promise<{ id: string; key: string }[]> {
  const keys: { id: string; key: string }[] = [];
  await inBatches(Array.from({ length: count }, (_, i) => i), 10, async (i) => {
    const created = await api.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `key-${Date.now()}-${i}` } });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
    keys.push({ id: created.body.id, key: created.body.key });
  });
  return keys;
}

async function revoke(id: string): Promise<void> {
  const response = await api.request('POST', `/v1/teams/${team.id}/keys/${id}/revoke`);
  if (response.status !== 200) throw new Error(`revoke: ${response.status} ${JSON.stringify(response.body)}`);
}

async function answer(node: { port: number }, key: string): Promise<string> {
  const response = await proxyRequest(node.port, `${origin.url}/`, bearer(key));
  return response.status === 200 ? 'served' : String(response.headers['x-portcullis-error']);
}

async function servedEverywhere(key: string): Promise<void> {
  for (const node of nodes) await waitFor(async () => (await answer(node, key)) === 'served', { what: `${node.nodeId} to serve the key` });
}

/**
 * Revokes `id` and watches both the nodes and the revocation status until every node
 * refuses the key and the status is complete. Whenever the status says complete, every
 * node must already refuse the key. Returns how long after the revoke the last node refused.
 */
async function revokeAndWatch(t: Test, id: string, key: string): Promise<number> {
  const revokedAt = Date.now();
  await revoke(id);
  const refusedAfter = new Map<string, number>();
  let complete = false;
  let falseProofs = 0;
  await waitFor(
    async () => {
      for (const node of nodes) {
        if (!refusedAfter.has(node.nodeId) && (await answer(node, key)) === 'key_revoked') refusedAfter.set(node.nodeId, Date.now() - revokedAt);
      }
      const status = (await api.request('GET', `/v1/teams/${team.id}/keys/${id}/revocation`)).body;
      if (status.complete === true) {
        complete = true;
        for (const node of nodes) if ((await answer(node, key)) === 'served') falseProofs++;
      }
      return complete && refusedAfter.size === nodes.length;
    },
    { what: 'every node to refuse the key and the status to be complete', timeoutMs: 15_000, intervalMs: 25 },
  );
  t.equal(falseProofs, 0, 'the status never said complete while a node still served the key');
  const slowest = Math.max(...refusedAfter.values());
  t.ok(slowest <= deadline(STALENESS_MS + 1_000), `every node refused the key ${slowest} ms after it was revoked (bound ${STALENESS_MS} ms)`);
  return slowest;
}

t.test('a backup restored into a new database under a fresh control plane: nodes start over in a new epoch and refuse what it revokes', async (t) => {
  const [lost, revokedAfterRestore, ...filler] = await createKeys(22);
  for (const { key } of [lost!, revokedAfterRestore!]) await servedEverywhere(key);
  const backup = await cluster.dump(new URL(liveUrl).pathname.slice(1));

  // After the backup the outbox moves on: 21 revocations the restore will lose.
  await revoke(lost!.id);
  await inBatches(filler, 10, (key) => revoke(key.id));
  for (const node of nodes) await waitFor(async () => (await answer(node, lost!.key)) === 'key_revoked', { what: `${node.nodeId} to refuse the lost key` });

  await controlPlane.stop();
  const restoredUrl = await cluster.restoreDump(backup);
  controlPlane = await startControlPlaneProcess({ ...controlPlaneEnv, DATABASE_URL: restoredUrl });
  const renewed = await controlPlane.waitForLog('new feed epoch: every node forgets its cache and starts over');
  t.match(String(renewed.reason), /the database moved/, 'the fresh control plane sees the database is a copy and draws a new epoch');

  const slowest = await revokeAndWatch(t, revokedAfterRestore!.id, revokedAfterRestore!.key);
  t.comment(`restored from a backup: refused everywhere ${slowest} ms after the revoke`);
  await servedEverywhere(lost!.key);
  t.pass('a key whose revocation the restore lost is served again: nodes follow the database they are pointed at');
});

t.test('the database files restored in place from a snapshot under a running control plane: the relay sees the outbox rewound', async (t) => {
  const [lost, revokedAfterRestore, ...filler] = await createKeys(12);
  for (const { key } of [lost!, revokedAfterRestore!]) await servedEverywhere(key);
  const snapshot = await cluster.snapshotFiles();
  await waitFor(async () => (await api.request('GET', `/v1/teams/${team.id}`)).status === 200, { what: 'the control plane to use the database again' });

  await revoke(lost!.id);
  await inBatches(filler, 10, (key) => revoke(key.id));
  for (const node of nodes) await waitFor(async () => (await answer(node, lost!.key)) === 'key_revoked', { what: `${node.nodeId} to refuse the lost key` });

  const epochsBefore = controlPlane.logLines().filter((line) => line.msg === 'new feed epoch: every node forgets its cache and starts over').length;
  await cluster.restoreFiles(snapshot);
  await waitFor(async () => (await api.request('GET', `/v1/teams/${team.id}`)).status === 200, { what: 'the control plane to use the restored database', timeoutMs: 20_000 });
  const renewed = await waitFor(
    () => controlPlane.logLines().filter((line) => line.msg === 'new feed epoch: every node forgets its cache and starts over')[epochsBefore],
    { what: 'a new epoch for the rewound outbox', timeoutMs: 20_000 },
  );
  t.match(String(renewed.reason), /rewound|past the outbox's latest/, 'the rewind is noticed although the database is where it was');
  t.equal(controlPlane.process.exitCode, null, 'the control plane lived through it');

  const slowest = await revokeAndWatch(t, revokedAfterRestore!.id, revokedAfterRestore!.key);
  t.comment(`restored in place from a snapshot: refused everywhere ${slowest} ms after the revoke`);
  await servedEverywhere(lost!.key);
});
