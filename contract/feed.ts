import { Type, type Static, type TObject, type TProperties } from 'typebox';
import { compileCheck, parseAndCheck, type Check, type Checked } from './check.js';

/**
 * The revocation feed's wire format: what the relay publishes to each region's bus and
 * what proxy nodes read. Nodes check every message on arrival (see `decodeFeedMessage`);
 * fields a newer relay adds are ignored, a message that fails the check is not trusted.
 *
 * Event kinds a node does not know (a newer control plane's) are neither refused nor
 * ignored. Refusing one would stall the feed at its seq: the catch-up that follows would
 * refuse it again, every later revocation would wait behind it, and heartbeats would keep
 * the node looking healthy meanwhile. Ignoring one could miss a change that takes access
 * away. So a node applies an unknown kind as "something about access changed": it steps
 * past the seq and forgets every cached decision (each key is verified again on its next
 * request), which is always correct and costs one verify per key in use. Nodes of this
 * version and later follow that rule; nodes before it (no `pools.changed`) refuse an
 * unknown kind, so upgrade every node before the control plane that writes a new kind.
 */

/** Kinds of event about one key, or a whole team when the key is null. */
export const AccessEventKind = Type.Enum(['key.revoked', 'key.rotated', 'key.updated', 'quota.exceeded', 'team.updated']);
export type AccessEventKind = Static<typeof AccessEventKind>;

/** The pools or their exits changed: nodes fetch them again (node API `/internal/v1/pools`). */
export const POOLS_CHANGED = 'pools.changed';

/** Every kind this version writes and understands. */
export const FeedEventKind = Type.Enum([...AccessEventKind.enum, POOLS_CHANGED]);
export type FeedEventKind = Static<typeof FeedEventKind>;

const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** Epoch milliseconds on the control plane's clock. */
const Instant = Type.Number({ minimum: 0 });
const HashHex = Type.String({ pattern: '^[0-9a-f]{64}$' });
/**
 * The outbox's identity: drawn when the database is created, drawn again when it is
 * replaced, restored or rewound. Seqs of different epochs are not comparable.
 */
export const FeedEpoch = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

/** An outbox row about a key or a team: a change nodes must apply, in `seq` order. */
export const RevocationEvent = Type.Object({
  seq: Seq,
  kind: AccessEventKind,
  teamId: Type.String({ minLength: 1 }),
  /** Null for events about a whole team. */
  keyId: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  /** SHA-256 of the secret to forget, hex; null for events about a whole team. */
  keyHash: Type.Union([HashHex, Type.Null()]),
  /** When the change committed. */
  at: Instant,
  /**
   * The W3C `traceparent` of the call that made the change, when it was traced: a node
   * applies the event in that trace. Optional: control planes before it send none.
   */
  traceparent: Type.Optional(Type.String({ pattern: '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' })),
});
export type RevocationEvent = Static<typeof RevocationEvent>;

/** An outbox row about pools: no team and no key, whatever the pool. */
export const PoolsChangedEvent = Type.Object({
  seq: Seq,
  kind: Type.Literal(POOLS_CHANGED),
  teamId: Type.Null(),
  keyId: Type.Null(),
  keyHash: Type.Null(),
  at: Instant,
});
export type PoolsChangedEvent = Static<typeof PoolsChangedEvent>;

/** A kind this version does not know, from a newer control plane: only its place in the order counts. */
export const NewerEvent = Type.Object({
  seq: Seq,
  kind: Type.String({ minLength: 1, maxLength: 100, not: { enum: FeedEventKind.enum } }),
  at: Instant,
});
export type NewerEvent = Static<typeof NewerEvent>;

/** Any outbox row, as the feed and the node API's catch-up pages carry it. */
export const ChangeEvent = Type.Union([RevocationEvent, PoolsChangedEvent, NewerEvent]);
export type ChangeEvent = Static<typeof ChangeEvent>;

const asFeedEvent = <P extends TProperties>(event: TObject<P>) => Type.Object({ type: Type.Literal('event'), epoch: FeedEpoch, ...event.properties });
const FeedRevocationEvent = asFeedEvent(RevocationEvent);
const FeedPoolsChangedEvent = asFeedEvent(PoolsChangedEvent);
const FeedNewerEvent = asFeedEvent(NewerEvent);
export const FeedEvent = Type.Union([FeedRevocationEvent, FeedPoolsChangedEvent, FeedNewerEvent]);
export type FeedEvent = Static<typeof FeedEvent>;
/** An event of a kind this version understands. */
export type KnownFeedEvent = Static<typeof FeedRevocationEvent> | Static<typeof FeedPoolsChangedEvent>;

const KNOWN_KINDS: ReadonlySet<string> = new Set(FeedEventKind.enum);
const ACCESS_KINDS: ReadonlySet<string> = new Set(AccessEventKind.enum);

export function isKnownEvent(event: FeedEvent): event is KnownFeedEvent {
  return KNOWN_KINDS.has(event.kind);
}

export const FeedHeartbeat = Type.Object({
  type: Type.Literal('heartbeat'),
  /** The latest seq in the outbox: a node behind it catches up from the node API. */
  seq: Seq,
  at: Instant,
  epoch: FeedEpoch,
});
export type FeedHeartbeat = Static<typeof FeedHeartbeat>;

export const FeedMessage = Type.Union([FeedEvent, FeedHeartbeat]);
export type FeedMessage = Static<typeof FeedMessage>;

export const FEED_CHANNEL = 'portcullis:feed';

export function encodeFeedMessage(message: FeedMessage): string {
  return JSON.stringify(message);
}

const checkRevocationEvent = compileCheck(FeedRevocationEvent);
const checkPoolsChangedEvent = compileCheck(FeedPoolsChangedEvent);
const checkNewerEvent = compileCheck(FeedNewerEvent);
const checkHeartbeat = compileCheck(FeedHeartbeat);

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

// Dispatching on `type`, then on `kind`, makes a problem name the field that is wrong for
// that kind of message, rather than whichever branch of a union failed first.
const checkFeedMessage: Check<FeedMessage> = (value) => {
  const type = field(value, 'type');
  if (type === 'heartbeat') return checkHeartbeat(value);
  if (type !== 'event') return { ok: false, problem: 'type must be "event" or "heartbeat"' };
  const kind = field(value, 'kind');
  if (typeof kind !== 'string') return { ok: false, problem: 'kind must be string' };
  if (ACCESS_KINDS.has(kind)) return checkRevocationEvent(value);
  if (kind === POOLS_CHANGED) return checkPoolsChangedEvent(value);
  return checkNewerEvent(value);
};

/** Parses and checks a message from the bus; a problem names the field that is wrong. */
export function decodeFeedMessage(text: string): Checked<FeedMessage> {
  return parseAndCheck(checkFeedMessage, text);
}
