import { EventEmitter } from 'node:events';
import type { FeedMessage, FeedPublisher, FeedSubscriber } from '../../contract/feed.js';

/**
 * The bus of a single-process deployment (`portcullis start` without REDIS_URL): the
 * relay and the node share memory, behind the same interfaces as the Redis bus.
 */
export interface InProcessBus {
  publisher(): FeedPublisher;
  subscriber(): FeedSubscriber;
}

export function createInProcessBus(): InProcessBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    publisher: () => ({
      async publish(message: FeedMessage) {
        emitter.emit('message', message);
      },
      async close() {},
    }),
    subscriber: () => {
      let listener: ((message: FeedMessage) => void) | undefined;
      return {
        async start(handlers) {
          listener = (message) => handlers.message(message);
          emitter.on('message', listener);
          handlers.connected();
        },
        async close() {
          if (listener !== undefined) emitter.off('message', listener);
        },
      };
    },
  };
}
