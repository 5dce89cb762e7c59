import t from 'tap';
import { decodeFeedMessage, type FeedMessage } from '../../contract/feed.js';
import { currentEpoch } from '../../control-plane/revocation/feed-epoch.js';
import { createInProcessBus } from '../../lib/feed/in-process-bus.js';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';

/**
 * The feed epoch on the control plane's side (DESIGN "Revocation protocol", step 5): every
 * message nodes read names it, and a node's report counts as proof of propagation only in
 * the current epoch and up to the seq the outbox has really reached.
 */

const bus = createInProcessBus();
const cp = await startTestControlPlane({ publishers: new Map([['local', bus.publisher()]]) });
t.teardown(() => cp.close());
const messages: FeedMessage[] = [];
const subscriber = bus.subscriber();
await subscriber.start({ message: (text) => messages.push((decodeFeedMessage(text) as { value: FeedMessage }).value), connected() {}, disconnected() {} });
t.teardown(() => subscriber.close());
const team = await cp.createTeam();

async function revokedKey(): Promise<{ id: string; seq: number }> {
  const key = (await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `k-${Math.random().toString(36).slice(2)}` } })).body;
  await cp.request('POST', `/v1/teams/${team.id}/keys/${key.id}/revoke`);
  const status = (await cp.request('GET', `/v1/teams/${team.id}/keys/${key.id}/revocation`)).body;
  return { id: key.id, seq: status.seq };
}

function report(nodeId: string, appliedSeq: number, epoch: string | undefined, ackSeq?: number) {
  return cp.request('POST', '/internal/v1/nodes/report', {
    token: cp.nodeToken,
    body: {
      nodeId,
      region: 'local',
      appliedSeq,
      ...(epoch !== undefined && { epoch }),
      feedSilenceMs: 0,
      openTunnels: 0,
      startedAt: Date.now() - 60_000,
      applied: ackSeq === undefined ? [] : [{ seq: ackSeq, appliedAt: Date.now(), closedConnections: 0 }],
    },
  });
}

const nodeOf = async (keyId: string, nodeId: string) =>
  (await cp.request('GET', `/v1/teams/${team.id}/keys/${keyId}/revocation`)).body.regions.flatMap((region: any) => region.nodes).find((node: any) => node.nodeId === nodeId);

t.test('heartbeats, events, catch-up pages and verify answers all name the current epoch', async (t) => {
  const epoch = await currentEpoch(cp.adminDb);
  t.match(epoch, /^[0-9a-f]{32}$/, 'an epoch was drawn at migration');
  const { seq } = await revokedKey();
  await waitFor(() => messages.some((message) => message.type === 'event' && message.seq === seq), { what: 'the event on the feed' });
  await waitFor(() => messages.some((message) => message.type === 'heartbeat'), { what: 'a heartbeat' });
  t.same(new Set(messages.map((message) => message.epoch)), new Set([epoch]), 'every feed message names it');
  const page = await cp.request('GET', '/internal/v1/revocations?after=0&limit=10', { token: cp.nodeToken });
  t.equal(page.body.epoch, epoch, 'a catch-up page names it');
  const verify = await cp.request('POST', '/internal/v1/keys/verify', { token: cp.nodeToken, body: { hashes: ['0'.repeat(64)] } });
  t.equal(verify.body.epoch, epoch, 'a verify answer names it');
});

t.test("a node's report proves a revocation only in the current epoch", async (t) => {
  const epoch = await currentEpoch(cp.adminDb);
  const { id, seq } = await revokedKey();
  await report('node-old-epoch', seq + 1_000, 'someotherepoch', seq);
  await report('node-no-epoch', seq, undefined, seq);
  await report('node-current', seq, epoch, seq);
  t.equal((await nodeOf(id, 'node-old-epoch')).applied, false, 'a higher seq of another epoch is no proof');
  t.equal((await nodeOf(id, 'node-old-epoch')).afterMs, null, 'nor is its ack');
  t.equal((await nodeOf(id, 'node-no-epoch')).applied, false, 'a report naming no epoch is no proof');
  t.equal((await nodeOf(id, 'node-current')).applied, true, 'the same seq in the current epoch is');
  t.type((await nodeOf(id, 'node-current')).afterMs, 'number');
  const status = (await cp.request('GET', `/v1/teams/${team.id}/keys/${id}/revocation`)).body;
  t.equal(status.complete, false, 'not complete while live nodes have not proven it');
});

t.test('a node that applied a seq the outbox never reached shows the outbox was rewound: a new epoch is drawn', async (t) => {
  const epoch = await currentEpoch(cp.adminDb);
  const { id, seq } = await revokedKey();
  const answer = await report('node-ahead', seq + 50, epoch, seq + 50);
  t.equal(answer.status, 200);
  const renewed = await currentEpoch(cp.adminDb);
  t.not(renewed, epoch, 'a new epoch');
  t.equal((await nodeOf(id, 'node-ahead')).applied, false, 'and the report that showed it proves nothing');
  const acks = await cp.adminDb.query('SELECT 1 FROM revocation_acks WHERE node_id = $1', ['node-ahead']);
  t.equal(acks.rowCount, 0, 'its acks were not recorded');
  await waitFor(() => messages.some((message) => message.type === 'heartbeat' && message.epoch === renewed), { what: 'heartbeats to name the new epoch' });
  t.pass('nodes hear of it on the next heartbeat');
});
