import t from 'tap';
import { Redis } from 'ioredis';
import { decodeFeedMessage, FEED_CHANNEL, type FeedEvent } from '../../contract/feed.js';
import type { FeedSubscriber } from '../../lib/feed/bus.js';
import type { NodeApiClient, BatchVerifyResult } from '../../proxy/sync/node-api-client.js';
import { inBatches } from '../helpers/batches.js';
import { waitFor } from '../helpers/deadline.js';
import { metricValue } from '../helpers/metrics.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';

const world = await startRegions(['us', 'eu']);
t.teardown(() => world.close());

async function revoke(id: string): Promise<void> {
  const response = await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
  if (response.status !== 200) throw new Error(`revoke: ${response.status}`);
}

t.test('concurrent revokes reach every region, each exactly once and in seq order', async (t) => {
  const listener = new Redis(world.redis.get('eu')!.url);
  t.teardown(() => listener.disconnect());
  const events: FeedEvent[] = [];
  listener.on('message', (_channel: string, text: string) => {
    const decoded = decodeFeedMessage(text);
    if (decoded.ok && decoded.value.type === 'event') events.push(decoded.value);
  });
  await listener.subscribe(FEED_CHANNEL);
  const keys: { id: string }[] = [];
  await inBatches(Array.from({ length: 200 }), 25, async () => keys.push(await world.createKey()));
  // 25 revoke calls at a time keep every admin connection in a revoking transaction.
  await inBatches(keys, 25, (key) => revoke(key.id));
  await waitFor(() => events.length >= 200, { what: '200 events on the eu channel' });
  const seqs = events.map((event) => event.seq);
  t.equal(new Set(seqs).size, 200, 'no duplicates');
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'published in seq order');
  t.equal(seqs[seqs.length - 1]! - seqs[0]! + 1, 200, 'no seq skipped');
  t.same(new Set(events.map((event) => ('keyId' in event ? event.keyId : null))), new Set(keys.map((key) => key.id)), 'every revoked key');
});

t.test('a node that loses feed messages detects the gap and catches up', async (t) => {
  let dropped = 0;
  // Fault injection in front of the real Redis subscription: lose the first two events.
  const lossy = (subscriber: FeedSubscriber): FeedSubscriber => ({
    start: (handlers) =>
      subscriber.start({
        ...handlers,
        message(text) {
          const decoded = decodeFeedMessage(text);
          if (decoded.ok && decoded.value.type === 'event' && dropped < 2) {
            dropped++;
            return;
          }
          handlers.message(text);
        },
      }),
    close: () => subscriber.close(),
  });
  const node = await world.startNode('us', { wrapSubscriber: lossy, stalenessBoundMs: 60_000 });
  const [a, b] = [await world.createKey(), await world.createKey()];
  for (const key of [a, b]) t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(key.key))).status, 200);
  await revoke(a.id);
  await revoke(b.id);
  for (const key of [a, b]) {
    await waitFor(
      async () => (await proxyRequest(node.port, `${world.origin.url}/`, bearer(key.key))).headers['x-portcullis-error'] === 'key_revoked',
      { what: 'the node to catch up on a lost revocation' },
    );
  }
  t.equal(dropped, 2, 'two events were lost on the way');
  t.ok((await metricValue(node.metrics.registry, 'portcullis_proxy_feed_catch_ups_total', { reason: 'heartbeat' })) >= 1, 'a heartbeat ahead of the node triggered the catch-up');
});

t.test('a verify answer that began before a revocation cannot put the revoked key back', async (t) => {
  let release: (() => void) | undefined;
  let answered = false;
  const gated = (api: NodeApiClient): NodeApiClient => ({
    ...api,
    async verifyKeys(hashes): Promise<BatchVerifyResult> {
      const result = await api.verifyKeys(hashes);
      answered = true;
      await new Promise<void>((resolve) => (release = resolve));
      return result;
    },
  });
  const node = await world.startNode('us', { wrapApi: gated, stalenessBoundMs: 60_000 });
  const { id, key } = await world.createKey();
  const pending = proxyRequest(node.port, `${world.origin.url}/`, bearer(key));
  await waitFor(() => answered, { what: 'the control plane to answer "active"' });
  const seqBefore = node.appliedSeq();
  await revoke(id);
  await waitFor(() => node.appliedSeq() > seqBefore, { what: 'the node to apply the revocation' });
  release!();
  const first = await pending;
  t.equal(first.status, 407, 'the in-flight request is refused');
  t.equal(first.headers['x-portcullis-error'], 'key_revoked');
  const again = await proxyRequest(node.port, `${world.origin.url}/`, bearer(key));
  release?.();
  t.equal(again.headers['x-portcullis-error'], 'key_revoked', 'and the key is not cached as active');
});
