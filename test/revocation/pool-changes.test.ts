import t from 'tap';
import { decodeFeedMessage } from '../../contract/feed.js';
import { createExitServer } from '../../exit/exit-server.js';
import type { FeedSubscriber } from '../../lib/feed/bus.js';
import { createLogger } from '../../lib/logger.js';
import { generateToken } from '../../lib/secret-format.js';
import { deadline, waitFor } from '../helpers/deadline.js';
import { basic, proxyRequest } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';

/**
 * Pool changes reach nodes through the feed, like revocations: the relay publishes the
 * `pools.changed` outbox row to the region's Redis and the node fetches its pools at once.
 * Every node here polls its pools once an hour, so the poll cannot be what delivered them.
 */

const AN_HOUR = 3_600_000;
const world = await startRegions(['eu']);
t.teardown(() => world.close());
const { key } = await world.createKey();
const exit = await createExitServer({ id: 'exit-fr', country: 'FR', token: generateToken(), allowPrivateDestinations: true, logger: createLogger({ level: 'silent', name: 'exit' }) });
t.teardown(() => exit.close());
const node = await world.startNode('eu', { poolRefreshMs: AN_HOUR });

async function statusThrough(port: number, user: string): Promise<{ status: number; exit: string | null }> {
  const response = await proxyRequest(port, `${world.origin.url}/pools`, basic(user, key));
  return { status: response.status, exit: response.status === 200 ? JSON.parse(response.body).exit : null };
}

/** Milliseconds from `change` being called until `user`'s request goes through `port`, at most `limitMs`. */
async function millisUntilServed(port: number, user: string, change: () => Promise<void>, limitMs = 1_000): Promise<number> {
  const started = performance.now();
  await change();
  await waitFor(async () => (await statusThrough(port, user)).status === 200, { what: `${user} to be served`, timeoutMs: limitMs, intervalMs: 5 });
  return performance.now() - started;
}

async function adminCall(method: string, path: string, body: unknown): Promise<void> {
  const response = await world.cp.request(method, path, { body });
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
}

t.test('a pool created through the admin API is usable through a node within a second', async (t) => {
  t.equal((await statusThrough(node.port, 'acme-pool-fresh')).status, 403, 'the node does not know the pool yet');
  const elapsed = await millisUntilServed(node.port, 'acme-pool-fresh', () =>
    adminCall('POST', '/v1/pools', { name: 'fresh', exits: [{ country: 'FR', url: exit.poolUrl }] }),
  );
  t.ok(elapsed <= deadline(1_000), `served ${Math.round(elapsed)} ms after the create call began`);
  t.equal((await statusThrough(node.port, 'acme-pool-fresh')).exit, 'exit-fr', 'through the new pool');
});

t.test('a pool change reaches the node within a second too', async (t) => {
  t.equal((await statusThrough(node.port, 'acme-pool-fresh-city-paris')).status, 503, 'no exit in Paris yet');
  const elapsed = await millisUntilServed(node.port, 'acme-pool-fresh-city-paris', () =>
    adminCall('PATCH', '/v1/pools/fresh', { exits: [{ country: 'FR', city: 'paris', url: exit.poolUrl }] }),
  );
  t.ok(elapsed <= deadline(1_000), `served ${Math.round(elapsed)} ms after the change call began`);
});

t.test('a node that lost the pools.changed message catches it up from the node API', async (t) => {
  let dropped = 0;
  // Fault injection in front of the real Redis subscription: every pool event is lost.
  const losingPoolEvents = (subscriber: FeedSubscriber): FeedSubscriber => ({
    start: (handlers) =>
      subscriber.start({
        ...handlers,
        message(text) {
          const decoded = decodeFeedMessage(text);
          if (decoded.ok && decoded.value.type === 'event' && decoded.value.kind === 'pools.changed') {
            dropped++;
            return;
          }
          handlers.message(text);
        },
      }),
    close: () => subscriber.close(),
  });
  const lossy = await world.startNode('eu', { poolRefreshMs: AN_HOUR, wrapSubscriber: losingPoolEvents });
  // The next heartbeat is ahead of the node: it fetches the event, then the pools. That
  // takes a heartbeat and two node API calls more than the healthy path, and is promised
  // within the staleness bound, as revocations are.
  const elapsed = await millisUntilServed(
    lossy.port,
    'acme-pool-late',
    () => adminCall('POST', '/v1/pools', { name: 'late', exits: [{ country: 'FR', url: exit.poolUrl }] }),
    2_000,
  );
  t.ok(dropped >= 1, 'the event was lost on the bus');
  t.ok(elapsed <= deadline(2_000), `served ${Math.round(elapsed)} ms after the create call began, an hour before the poll`);
});
