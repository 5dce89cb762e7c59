/**
 * The revocation feed's wire format: what the relay publishes to each region's bus and
 * what proxy nodes read. Shared by both sides as a contract, like the node API.
 */

export type FeedEventKind = 'key.revoked' | 'key.rotated' | 'key.updated' | 'quota.exceeded' | 'team.updated';

export interface FeedEvent {
  type: 'event';
  seq: number;
  kind: FeedEventKind;
  teamId: string;
  /** Null for events about a whole team. */
  keyId: string | null;
  /** SHA-256 of the secret to forget, hex; null for events about a whole team. */
  keyHash: string | null;
  /** When the change committed (epoch ms, control plane clock). */
  at: number;
}

export interface FeedHeartbeat {
  type: 'heartbeat';
  /** The latest seq in the outbox: a node behind it catches up from the node API. */
  seq: number;
  at: number;
}

export type FeedMessage = FeedEvent | FeedHeartbeat;

export const FEED_CHANNEL = 'portcullis:feed';

export function encodeFeedMessage(message: FeedMessage): string {
  return JSON.stringify(message);
}

/** Parses a message from the bus; undefined for anything malformed. */
export function decodeFeedMessage(text: string): FeedMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as Record<string, unknown>;
  if (!Number.isSafeInteger(message.seq) || typeof message.at !== 'number') return undefined;
  if (message.type === 'heartbeat') return message as unknown as FeedHeartbeat;
  const isKeyOrNull = (value: unknown) => typeof value === 'string' || value === null;
  if (message.type !== 'event' || !isKeyOrNull(message.keyHash) || !isKeyOrNull(message.keyId) || typeof message.kind !== 'string') return undefined;
  return message as unknown as FeedEvent;
}

/** One region's bus, as the relay sees it. */
export interface FeedPublisher {
  /** Rejects when the region cannot be reached; the relay keeps its cursor and retries. */
  publish(message: FeedMessage): Promise<void>;
  close(): Promise<void>;
}

export interface FeedSubscriberHandlers {
  message(message: FeedMessage): void;
  /** Called on every (re)connection, so the node can catch up on what it missed. */
  connected(): void;
  disconnected(): void;
}

/** One region's bus, as a node sees it. */
export interface FeedSubscriber {
  start(handlers: FeedSubscriberHandlers): Promise<void>;
  close(): Promise<void>;
}
