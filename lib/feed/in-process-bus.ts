import { EventEmitter } from 'node:events';
import { encodeFeedMessage } from '../../contract/feed.js';
import type { FeedPublisher, FeedSubscriber } from './bus.js';

/**
 * The bus of a single-process deployment (`portcullis start` without REDIS_URL): the
 * relay and the node share memory, behind the same interfaces as the Redis bus. Messages
 * are encoded as they would be on Redis, so the node checks them the same way.
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
      async publish(message) {
        emitter.emit('message', encodeFeedMessage(message));
      },
      async close() {},
    }),
    subscriber: () => {
      let listener: ((text: string) => void) | undefined;
      return {
        async start(handlers) {
          listener = (text) => handlers.message(text);
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
