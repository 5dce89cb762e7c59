import { encodeFeedMessage, FEED_CHANNEL } from '../../contract/feed.js';
import { createFailureLog } from '../failure-log.js';
import type { Logger } from '../logger.js';
import { createRedisClient } from '../redis-client.js';
import type { FeedPublisher, FeedSubscriber } from './bus.js';

const MAX_RECONNECT_DELAY_MS = 1_000;
const reconnectDelay = (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 5), MAX_RECONNECT_DELAY_MS);

export interface RedisBusOptions {
  /** One server, or a Sentinel-managed primary (lib/redis-client.ts). */
  url: string;
  /** How long a publish may wait for the server before the relay treats the region as down. */
  commandTimeoutMs?: number;
}

/**
 * A region's Redis, as the relay publishes to it. Commands fail at once while the server is
 * unreachable (no offline queue): the relay keeps that region's cursor and retries, so the
 * backlog goes out in order when the server is back.
 */
export function createRedisPublisher({ url, commandTimeoutMs = 1_000 }: RedisBusOptions): FeedPublisher {
  const client = createRedisClient(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    retryStrategy: reconnectDelay,
    lazyConnect: false,
  });
  client.on('error', () => {});
  return {
    async publish(message) {
      await client.publish(FEED_CHANNEL, encodeFeedMessage(message));
    },
    async close() {
      client.disconnect();
    },
  };
}

export interface RedisSubscriberOptions {
  url: string;
  /** Hears once when the region's Redis becomes unreachable and once when it is back. */
  logger: Logger;
}

/**
 * A node's subscription to its region's Redis. Reconnects with backoff forever, subscribes
 * on every connection (the first one too, however long after start it comes: a node may
 * start while its Redis is down), and tells the node once the subscription stands, so that
 * the catch-up it then makes covers everything published before.
 */
export function createRedisSubscriber({ url, logger }: RedisSubscriberOptions): FeedSubscriber {
  const client = createRedisClient(url, { retryStrategy: reconnectDelay, maxRetriesPerRequest: null, lazyConnect: true, autoResubscribe: false });
  const failures = createFailureLog(logger, {
    failing: "the region's Redis is unreachable: no revocation feed until it is back (revocations are polled from the control plane past the staleness bound)",
    recovered: "the region's Redis is back: subscribed to the revocation feed",
  });
  let closing = false;
  client.on('error', (error: Error) => failures.failed({ err: error }));
  return {
    async start(handlers) {
      // Start waits for the first subscription, or for the first sign that it will not come soon.
      let firstSubscription: () => void = () => {};
      const subscribedOrLost = new Promise<void>((resolve) => {
        firstSubscription = resolve;
        client.once('close', resolve);
      });
      client.on('message', (channel: string, text: string) => {
        if (channel === FEED_CHANNEL) handlers.message(text);
      });
      client.on('ready', () => {
        client.subscribe(FEED_CHANNEL).then(
          () => {
            failures.recovered();
            firstSubscription();
            handlers.connected();
          },
          (error: unknown) => failures.failed({ err: error }),
        );
      });
      client.on('close', () => {
        if (!closing) failures.failed({ reason: 'connection closed' });
        handlers.disconnected();
      });
      // A start with Redis down goes on without waiting: the client keeps trying in the background.
      await client.connect().then(
        () => subscribedOrLost,
        () => undefined,
      );
    },
    async close() {
      closing = true;
      client.disconnect();
    },
  };
}
