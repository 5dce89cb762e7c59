import { Redis } from 'ioredis';
import { encodeFeedMessage, FEED_CHANNEL } from '../../contract/feed.js';
import type { FeedPublisher, FeedSubscriber } from './bus.js';

const MAX_RECONNECT_DELAY_MS = 1_000;
const reconnectDelay = (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 5), MAX_RECONNECT_DELAY_MS);

export interface RedisBusOptions {
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
  const client = new Redis(url, {
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

/**
 * A node's subscription to its region's Redis. Reconnects with backoff forever and tells
 * the node on every (re)connection so it can catch up from the node API.
 */
export function createRedisSubscriber({ url }: RedisBusOptions): FeedSubscriber {
  const client = new Redis(url, { retryStrategy: reconnectDelay, maxRetriesPerRequest: null, lazyConnect: true, autoResubscribe: true });
  client.on('error', () => {});
  return {
    async start(handlers) {
      client.on('message', (channel: string, text: string) => {
        if (channel === FEED_CHANNEL) handlers.message(text);
      });
      // 'ready' on a subscriber connection fires after the channels are subscribed again.
      client.on('ready', () => handlers.connected());
      client.on('close', () => handlers.disconnected());
      try {
        await client.connect();
        await client.subscribe(FEED_CHANNEL);
      } catch {
        // Keeps retrying in the background; the node treats its feed as silent until then.
      }
    },
    async close() {
      client.disconnect();
    },
  };
}
