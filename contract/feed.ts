import { Type, type Static } from 'typebox';
import { compileCheck, parseAndCheck, type Check, type Checked } from './check.js';

/**
 * The revocation feed's wire format: what the relay publishes to each region's bus and
 * what proxy nodes read. Nodes check every message on arrival (see `decodeFeedMessage`);
 * fields a newer relay adds are ignored, a message that fails the check is not trusted.
 */

export const FeedEventKind = Type.Enum(['key.revoked', 'key.rotated', 'key.updated', 'quota.exceeded', 'team.updated']);
export type FeedEventKind = Static<typeof FeedEventKind>;

const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** Epoch milliseconds on the control plane's clock. */
const Instant = Type.Number({ minimum: 0 });
const HashHex = Type.String({ pattern: '^[0-9a-f]{64}$' });

/** One outbox row: a change nodes must apply, in `seq` order. */
export const RevocationEvent = Type.Object({
  seq: Seq,
  kind: FeedEventKind,
  teamId: Type.String({ minLength: 1 }),
  /** Null for events about a whole team. */
  keyId: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  /** SHA-256 of the secret to forget, hex; null for events about a whole team. */
  keyHash: Type.Union([HashHex, Type.Null()]),
  /** When the change committed. */
  at: Instant,
});
export type RevocationEvent = Static<typeof RevocationEvent>;

export const FeedEvent = Type.Object({ type: Type.Literal('event'), ...RevocationEvent.properties });
export type FeedEvent = Static<typeof FeedEvent>;

export const FeedHeartbeat = Type.Object({
  type: Type.Literal('heartbeat'),
  /** The latest seq in the outbox: a node behind it catches up from the node API. */
  seq: Seq,
  at: Instant,
});
export type FeedHeartbeat = Static<typeof FeedHeartbeat>;

export const FeedMessage = Type.Union([FeedEvent, FeedHeartbeat]);
export type FeedMessage = Static<typeof FeedMessage>;

export const FEED_CHANNEL = 'portcullis:feed';

export function encodeFeedMessage(message: FeedMessage): string {
  return JSON.stringify(message);
}

const checkEvent = compileCheck(FeedEvent);
const checkHeartbeat = compileCheck(FeedHeartbeat);
// Dispatching on `type` first makes a problem name the field that is wrong for that kind
// of message, rather than whichever branch of a union failed first.
const checkFeedMessage: Check<FeedMessage> = (value) => {
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  if (type === 'event') return checkEvent(value);
  if (type === 'heartbeat') return checkHeartbeat(value);
  return { ok: false, problem: 'type must be "event" or "heartbeat"' };
};

/** Parses and checks a message from the bus; a problem names the field that is wrong. */
export function decodeFeedMessage(text: string): Checked<FeedMessage> {
  return parseAndCheck(checkFeedMessage, text);
}
