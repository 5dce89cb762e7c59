import t from 'tap';
import { sha256Hex } from '../../lib/hash.js';
import { deadline, waitFor, within } from '../helpers/deadline.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const world = await startWorld();
t.teardown(() => world.close());
const second = await world.startNode();
const nodes = [world.node, second];
const teamPath = `/v1/teams/${world.team.id}`;

/** `count` keys of the world's team, made in bulk calls of 1,000. */
async function bulkKeys(count: number, prefix: string): Promise<{ id: string; key: string }[]> {
  const made: { id: string; key: string }[] = [];
  for (let offset = 0; offset < count; offset += 1_000) {
    const keys = Array.from({ length: Math.min(1_000, count - offset) }, (_, i) => ({ name: `${prefix}-${offset + i}` }));
    const created = await world.cp.request('POST', `${teamPath}/keys/bulk`, { body: { keys } });
    if (created.status !== 201) throw new Error(`bulk: ${created.status} ${JSON.stringify(created.body)}`);
    made.push(...created.body.data.map((key: { id: string; key: string }) => ({ id: key.id, key: key.key })));
  }
  return made;
}

const codeOf = async (port: number, key: string) => {
  const response = await proxyRequest(port, `${world.origin.url}/check`, bearer(key));
  return response.status === 200 ? 'ok' : String(response.headers['x-portcullis-error']);
};

const codesOf = async (port: number, keys: { key: string }[]) => {
  const codes: string[] = [];
  for (const { key } of keys) codes.push(await codeOf(port, key));
  return codes;
};

/** Opens a tunnel through `port` and waits for the first streamed bytes; resolves with a promise of its close. */
async function streamingTunnel(port: number, key: string) {
  const tunnel = await proxyConnect(port, `127.0.0.1:${world.origin.port}`, bearer(key));
  if (tunnel.status !== 200) throw new Error(`tunnel: ${tunnel.head}`);
  tunnel.socket.write('GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await new Promise((resolve) => tunnel.socket.once('data', resolve));
  let closed = false;
  const close = new Promise<void>((resolve) => tunnel.socket.once('close', () => ((closed = true), resolve())));
  return { socket: tunnel.socket, close, isClosed: () => closed };
}

async function proofComplete(kind: 'locked' | 'lifted') {
  return waitFor(
    async () => {
      const status = await world.cp.request('GET', `${teamPath}/lockdown`);
      return status.body.change?.kind === kind && status.body.change.complete === true ? status.body : undefined;
    },
    { what: `the ${kind} change to reach every node` },
  );
}

t.test('a lockdown refuses thousands of keys on every node with one event, closes their tunnels, and lifts', async (t) => {
  const keys = await bulkKeys(3_000, 'old');
  const sample = keys.filter((_, i) => i % 60 === 0);
  for (const node of nodes) t.same(await codesOf(node.port, sample), sample.map(() => 'ok'), `${node.nodeId} serves a sample of the keys`);
  const tunnels = await Promise.all(nodes.map((node, i) => streamingTunnel(node.port, keys[i]!.key)));
  const outboxBefore = (await world.cp.adminDb.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')).rows[0]!.n;
  const keysBefore = (await world.cp.adminDb.query<{ n: number; latest: Date }>('SELECT count(*)::int AS n, max(updated_at) AS latest FROM api_keys WHERE team_id = $1', [world.team.id])).rows[0]!;

  const lockedAt = Date.now();
  const locked = await world.cp.request('POST', `${teamPath}/lockdown`, { body: {} });
  t.equal(locked.status, 200);
  t.equal(locked.body.locked, true);
  t.type(locked.body.notBefore, 'string');
  // A key made after the lockdown's instant is not covered by it.
  const fresh = await world.createKey();

  const refusedAfter = await Promise.all(
    nodes.map((node) =>
      waitFor(async () => ((await codeOf(node.port, sample[0]!.key)) === 'team_locked' ? Date.now() - lockedAt : undefined), {
        what: `node ${node.nodeId} to refuse a locked key`,
        timeoutMs: 2_000,
      }),
    ),
  );
  t.ok(Math.max(...refusedAfter) <= deadline(2_000), `refused by every node after at most ${Math.max(...refusedAfter)} ms`);
  await Promise.all(tunnels.map((tunnel) => within(tunnel.close, { what: 'the locked key tunnel to be closed', timeoutMs: 2_000 })));
  for (const node of nodes) {
    t.same(await codesOf(node.port, sample), sample.map(() => 'team_locked'), `${node.nodeId} refuses every key of the sample`);
    t.equal(await codeOf(node.port, keys[2_999]!.key), 'team_locked', 'a key the node never saw is refused too');
    t.equal(await codeOf(node.port, fresh.key), 'ok', 'a key created after notBefore works');
  }
  const refusal = await proxyRequest(world.node.port, `${world.origin.url}/check`, bearer(sample[1]!.key));
  t.equal(refusal.status, 403);
  t.match(refusal.headers['proxy-status'], /details="team_locked"/);

  t.equal((await world.cp.adminDb.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE kind = 'team.locked'`)).rows[0]!.n, 1, 'one event for 3,000 keys');
  // The lockdown, and the creation of `fresh` (which writes none).
  t.equal((await world.cp.adminDb.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')).rows[0]!.n - outboxBefore, 1, 'no event per key');
  const keysAfter = (await world.cp.adminDb.query<{ n: number; latest: Date; active: number }>(
    `SELECT count(*)::int AS n, max(updated_at) AS latest, count(*) FILTER (WHERE status = 'active')::int AS active FROM api_keys WHERE team_id = $1 AND id <> $2`,
    [world.team.id, fresh.id],
  )).rows[0]!;
  t.same([keysAfter.n, keysAfter.latest, keysAfter.active], [keysBefore.n, keysBefore.latest, keysBefore.n], 'no key row was touched');

  const proof = await proofComplete('locked');
  t.equal(proof.change.liveNodes, 2);
  const proofNodes = proof.change.regions.flatMap((region: any) => region.nodes);
  t.equal(proofNodes.length, 2);
  for (const node of proofNodes) {
    t.equal(node.applied, true);
    t.type(node.afterMs, 'number');
    t.equal(node.closedConnections, 1, `${node.nodeId} closed the tunnel it carried`);
  }

  const verify = await world.cp.request('POST', '/internal/v1/keys/verify', { token: world.cp.nodeToken, body: { hashes: [sha256Hex(sample[0]!.key), sha256Hex(fresh.key)] } });
  t.match(verify.body.keys[sha256Hex(sample[0]!.key)], { status: 'revoked', lockedDown: true }, 'nodes that predate lockdowns are told the key is revoked');
  t.match(verify.body.keys[sha256Hex(fresh.key)], { status: 'active', lockedDown: false });

  const catchUp = await world.cp.request('GET', '/internal/v1/revocations?after=0', { token: world.cp.nodeToken });
  t.match(
    catchUp.body.events.find((event: any) => event.kind === 'team.locked'),
    { teamId: world.team.id, keyId: null, keyHash: null, notBefore: Date.parse(locked.body.notBefore) },
    'a node catching up gets the lockdown with its instant',
  );

  const restarted = await world.startNode();
  t.equal(await codeOf(restarted.port, sample[3]!.key), 'team_locked', 'a node started after the lockdown refuses from the verify answer');
  t.equal(await codeOf(restarted.port, fresh.key), 'ok');
  // Kept running: a node closed now would still count as live, and never apply the lift.
  t.teardown(() => restarted.close());

  const lifted = await world.cp.request('DELETE', `${teamPath}/lockdown`);
  t.equal(lifted.status, 200);
  t.equal(lifted.body.locked, false);
  for (const node of [...nodes, restarted]) {
    await waitFor(async () => (await codeOf(node.port, sample[0]!.key)) === 'ok', { what: `node ${node.nodeId} to serve again after the lift`, timeoutMs: 2_000 });
    t.same(await codesOf(node.port, sample), sample.map(() => 'ok'), `${node.nodeId} serves every key of the sample again`);
  }
  const liftProof = await proofComplete('lifted');
  t.same([liftProof.change.liveNodes, liftProof.change.pendingNodes], [3, 0], 'every live node, the one started meanwhile too, applied the lift');
  t.equal((await world.cp.request('DELETE', `${teamPath}/lockdown`)).body.change.seq, liftProof.change.seq, 'lifting again writes no event');

  const activity = await world.cp.request('GET', `${teamPath}/activity?limit=20`);
  const actions = activity.body.data.map((entry: any) => entry.action);
  t.ok(actions.includes('team.locked_down') && actions.includes('team.lockdown_lifted'), 'both are in the activity log');
  t.equal(actions.filter((action: string) => action === 'team.lockdown_lifted').length, 1);
});

t.test('notBefore in the past spares keys made after it; in the future it is refused', async (t) => {
  const older = await world.createKey();
  const tunnel = await streamingTunnel(world.node.port, older.key);
  const cut = (await world.cp.adminDb.query<{ at: Date }>('SELECT created_at AS at FROM api_keys WHERE id = $1', [older.id])).rows[0]!.at;
  const newer = await world.createKey();
  const newerTunnel = await streamingTunnel(world.node.port, newer.key);
  for (const key of [older, newer]) t.equal(await codeOf(world.node.port, key.key), 'ok');
  const notBefore = new Date(cut.getTime() + 1).toISOString();
  const locked = await world.cp.request('POST', `${teamPath}/lockdown`, { body: { notBefore } });
  t.equal(locked.status, 200);
  t.equal(locked.body.notBefore, notBefore);
  await within(tunnel.close, { what: 'the older key tunnel to close', timeoutMs: 2_000 });
  await waitFor(async () => (await codeOf(world.node.port, older.key)) === 'team_locked', { what: 'the older key refused', timeoutMs: 2_000 });
  t.equal(await codeOf(world.node.port, newer.key), 'ok', 'a key created after notBefore works');
  t.equal(newerTunnel.isClosed(), false, "its tunnel stays open");
  newerTunnel.socket.destroy();

  const future = await world.cp.request('POST', `${teamPath}/lockdown`, { body: { notBefore: new Date(Date.now() + 3_600_000).toISOString() } });
  t.equal(future.status, 422);
  t.equal(future.body.error.code, 'not_before_in_future');
  t.equal((await world.cp.request('GET', `${teamPath}/lockdown`)).body.notBefore, notBefore, 'nothing was written');

  const other = await world.cp.createTeam();
  t.equal((await world.cp.request('POST', `${teamPath}/lockdown`, { token: other.token, body: {} })).status, 404, 'another team cannot lock this one');
  t.equal((await world.cp.request('DELETE', `${teamPath}/lockdown`)).status, 200);
});
