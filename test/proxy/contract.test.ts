import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeFeedMessage, encodeFeedMessage } from '../../contract/feed.js';
import { currentEpoch } from '../../control-plane/revocation/feed-epoch.js';
import type { FeedSubscriber, FeedSubscriberHandlers } from '../../lib/feed/bus.js';
import { createLogger } from '../../lib/logger.js';
import { waitFor } from '../helpers/deadline.js';
import { metricValue } from '../helpers/metrics.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startTestProxyNode } from '../helpers/proxy-node.js';
import { startWorld } from '../helpers/world.js';

/**
 * The node API and the feed are read by a program of another version: a node checks what
 * arrives against the contract and, where it does not match, trusts nothing from it (fail
 * closed) — it neither crashes nor serves on the strength of a malformed answer.
 */

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());

/** A logger whose lines the test can read. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'info', name: 'proxy', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  return { logger, lines };
}

/** The control plane behind a stand-in that corrupts its verify answers while `corrupt` is set. */
async function corruptingControlPlane(corrupt: (answer: any) => void) {
  let active = true;
  const server = http.createServer((request, response) => {
    const upstream = http.request(new URL(request.url!, world.cp.url), { method: request.method, headers: request.headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        let body = Buffer.concat(chunks).toString('utf8');
        if (active && request.url === '/internal/v1/keys/verify' && answer.statusCode === 200) {
          const parsed = JSON.parse(body);
          corrupt(parsed);
          body = JSON.stringify(parsed);
        }
        const headers = { ...answer.headers, 'content-length': String(Buffer.byteLength(body)) };
        response.writeHead(answer.statusCode!, headers).end(body);
      });
    });
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stop: () => (active = false) };
}

t.test('a verify answer that breaks the contract is refused like an unreachable control plane, and the log names the field', async (t) => {
  const { logger, lines } = capturedLogger();
  const standIn = await corruptingControlPlane((answer) => {
    for (const key of Object.values<any>(answer.keys)) key.status = 'suspended';
  });
  const node = await startTestProxyNode({ controlPlaneUrl: standIn.url, nodeToken: world.cp.nodeToken, subscriber: quietSubscriber().subscriber, logger });
  t.teardown(() => node.close());
  const { key } = await world.createKey();
  const refused = await proxyRequest(node.port, `${world.origin.url}/`, bearer(key));
  t.equal(refused.status, 503, 'not served on a malformed answer');
  t.equal(refused.headers['x-portcullis-error'], 'auth_unavailable');
  const line = lines.find((entry) => entry.msg === 'node API answer breaks the contract; treating the control plane as unavailable');
  t.ok(line, 'the contract break is logged');
  t.match(String(line?.problem), /^keys\.[0-9a-f]{64}\.status must be equal to one of the allowed values \(active, revoked\)$/, 'naming the field');
  standIn.stop();
  const served = await waitFor(
    async () => {
      const again = await proxyRequest(node.port, `${world.origin.url}/`, bearer(key));
      return again.status === 200 && again;
    },
    { what: 'the node to serve the key once answers are well-formed again' },
  );
  t.equal(served.status, 200, 'and it did not crash: well-formed answers are trusted again');
});

/** A feed the test writes raw text into. */
function quietSubscriber() {
  let handlers: FeedSubscriberHandlers | undefined;
  const subscriber: FeedSubscriber = {
    async start(given) {
      handlers = given;
      given.connected();
    },
    async close() {},
  };
  return { subscriber, send: (text: string) => handlers?.message(text) };
}

t.test('a feed message that breaks the contract is not applied and not taken as a sign of life', async (t) => {
  const { logger, lines } = capturedLogger();
  const feed = quietSubscriber();
  const node = await startTestProxyNode({ controlPlaneUrl: world.cp.url, nodeToken: world.cp.nodeToken, subscriber: feed.subscriber, logger, stalenessBoundMs: 500 });
  t.teardown(() => node.close());
  const { key } = await world.createKey();
  const applied = node.appliedSeq();
  const epoch = await currentEpoch(world.cp.adminDb);
  feed.send(encodeFeedMessage({ type: 'heartbeat', seq: applied, at: Date.now(), epoch }));
  t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(key))).status, 200, 'the key is cached');
  const cachedBy = Date.now();

  const malformed = JSON.stringify({ type: 'event', epoch, seq: applied + 1, kind: 'key.revoked', teamId: world.team.id, keyId: 'key_x', keyHash: 42, at: Date.now() });
  const timer = setInterval(() => feed.send(malformed), 20);
  t.teardown(() => clearInterval(timer));
  // The cached decision is a little younger than the silence: wait until it too is past the bound.
  await waitFor(() => node.feedSilenceMs() > 500 && Date.now() - cachedBy > 500, { what: 'the feed to count as silent although malformed messages keep arriving' });
  t.equal(node.appliedSeq(), applied, 'the malformed event was not applied');
  t.equal(lines.filter((entry) => entry.msg === 'feed message breaks the contract: ignored, and not counted as the feed speaking').length, 1, 'logged once while it lasts');
  t.equal(lines.find((entry) => entry.problem !== undefined)?.problem, 'keyHash must be string', 'naming the field');

  const missesBefore = await metricValue(node.metrics.registry, 'portcullis_proxy_auth_cache_total', { result: 'miss' });
  t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(key))).status, 200);
  t.equal(
    await metricValue(node.metrics.registry, 'portcullis_proxy_auth_cache_total', { result: 'miss' }),
    missesBefore + 1,
    'past the staleness bound the cached key was verified again, not trusted',
  );
  clearInterval(timer);
  feed.send(encodeFeedMessage({ type: 'heartbeat', seq: applied, at: Date.now(), epoch }));
  await waitFor(() => lines.some((entry) => entry.msg === 'feed messages match the contract again'), { what: 'the recovery to be logged' });
});

t.test('feed events about pools carry no team and no key, and the check names a field that says otherwise', async (t) => {
  const pools = { type: 'event', epoch: 'e1', seq: 7, kind: 'pools.changed', teamId: null, keyId: null, keyHash: null, at: 1 };
  t.ok(decodeFeedMessage(JSON.stringify(pools)).ok, 'a pool event');
  t.same(decodeFeedMessage(JSON.stringify({ ...pools, teamId: 'team_1' })), { ok: false, problem: 'teamId must be null' });
  t.same(decodeFeedMessage(JSON.stringify({ ...pools, keyHash: 'a'.repeat(64) })), { ok: false, problem: 'keyHash must be null' });
  const revoked = { ...pools, kind: 'key.revoked', teamId: null, keyId: 'key_1', keyHash: 'a'.repeat(64) };
  t.same(decodeFeedMessage(JSON.stringify(revoked)), { ok: false, problem: 'teamId must be string' }, 'an event about a key always names its team');
  t.ok(decodeFeedMessage(JSON.stringify({ type: 'event', epoch: 'e1', seq: 8, kind: 'exits.moved', at: 1, region: 'eu' })).ok, 'a kind from a newer version, in any shape');
  t.same(decodeFeedMessage(JSON.stringify({ type: 'event', epoch: 'e1', kind: 'exits.moved', at: 1 })), { ok: false, problem: 'seq is missing' }, 'but always with its seq');
  t.same(decodeFeedMessage(JSON.stringify({ ...pools, epoch: undefined })), { ok: false, problem: 'epoch is missing' }, 'and always with its epoch');
});

t.test('an event of a kind the node does not know moves it past that seq and makes it verify every key again', async (t) => {
  const { logger, lines } = capturedLogger();
  const feed = quietSubscriber();
  const node = await startTestProxyNode({ controlPlaneUrl: world.cp.url, nodeToken: world.cp.nodeToken, subscriber: feed.subscriber, logger, stalenessBoundMs: 60_000 });
  t.teardown(() => node.close());
  const { key } = await world.createKey();
  const applied = node.appliedSeq();
  t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(key))).status, 200, 'the key is cached');
  const missesBefore = await metricValue(node.metrics.registry, 'portcullis_proxy_auth_cache_total', { result: 'miss' });
  t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(key))).status, 200);
  t.equal(await metricValue(node.metrics.registry, 'portcullis_proxy_auth_cache_total', { result: 'miss' }), missesBefore, 'served from the cache');

  // What a newer control plane would write: rows of a kind this version does not know.
  const { rows } = await world.cp.adminDb.query<{ seq: number }>(
    `INSERT INTO outbox (seq, kind, team_id) SELECT nextval('outbox_seq'), 'exits.moved', $1 FROM generate_series(1, 2) RETURNING seq`,
    [world.team.id],
  );
  const epoch = await currentEpoch(world.cp.adminDb);
  for (const { seq } of rows) feed.send(JSON.stringify({ type: 'event', epoch, seq: Number(seq), kind: 'exits.moved', at: Date.now() }));
  await waitFor(() => node.appliedSeq() === Number(rows[1]!.seq), { what: 'the node to step past both events' });
  t.ok(node.appliedSeq() > applied, 'not stalled on');
  t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(key))).status, 200);
  t.equal(await metricValue(node.metrics.registry, 'portcullis_proxy_auth_cache_total', { result: 'miss' }), missesBefore + 1, 'the key was verified again');
  t.equal(lines.filter((entry) => entry.kind === 'exits.moved').length, 1, 'logged once per kind');
});
