import type { FeedMessage } from '../../contract/feed.js';

/**
 * A region's bus for the revocation feed, behind one interface whether it is the region's
 * Redis or, in a single-process deployment, memory. Messages travel as text: the node
 * decodes and checks each one (contract/feed.ts), whichever bus carried it.
 */

/** One region's bus, as the relay sees it. */
export interface FeedPublisher {
  /** Rejects when the region cannot be reached; the relay keeps its cursor and retries. */
  publish(message: FeedMessage): Promise<void>;
  close(): Promise<void>;
}

export interface FeedSubscriberHandlers {
  /** A message as it arrived, not yet checked. */
  message(text: string): void;
  /** Called on every (re)connection, so the node can catch up on what it missed. */
  connected(): void;
  disconnected(): void;
}

/** One region's bus, as a node sees it. */
export interface FeedSubscriber {
  start(handlers: FeedSubscriberHandlers): Promise<void>;
  close(): Promise<void>;
}
