import { Type, type Static } from 'typebox';
import { compileCheck } from './check.js';
import { ChangeEvent, FeedEpoch } from './feed.js';

/**
 * The node API (`/internal/v1`): what proxy nodes send the control plane and what it
 * answers. The control plane validates requests and serializes answers with these
 * schemas; nodes check every answer with them before trusting it. Nodes may run an older
 * version than the control plane, so requests refuse unknown fields (a new field must be
 * optional) while answers may carry fields an older node ignores.
 */

/** The most key hashes one verify call may carry. */
export const MAX_VERIFY_BATCH = 100;
/** The most revocation acks one node report may carry. */
export const MAX_REPORTED_REVOCATIONS = 10_000;
/**
 * The most entries one usage batch may carry: the control plane records a batch in one
 * transaction, which must stay well within its node statement timeout. A node with more
 * busy keys in a flush window sends several batches.
 */
export const MAX_USAGE_ENTRIES = 1_000;
/**
 * What the control plane accepts as a node API request body, whatever its BODY_LIMIT_BYTES
 * (which bounds the admin API): a full usage batch or node report of the largest entries fits.
 */
export const MAX_NODE_API_BODY_BYTES = 1_048_576;
/** The most events one catch-up page may carry. */
export const MAX_REVOCATIONS_PAGE = 5_000;

const Name = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:-]+$' });
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const HashHex = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const RateLimit = Type.Object({
  requestsPerSecond: Type.Integer({ minimum: 1 }),
  burst: Type.Integer({ minimum: 1 }),
});
export type RateLimit = Static<typeof RateLimit>;

export const ConcurrencyLimit = Type.Object({
  perNode: Nullable(Type.Integer({ minimum: 1 })),
  perRegion: Nullable(Type.Integer({ minimum: 1 })),
});
export type ConcurrencyLimit = Static<typeof ConcurrencyLimit>;

// Verify: a node's cache misses, batched.

export const VerifyRequest = Type.Object(
  { hashes: Type.Array(HashHex, { minItems: 1, maxItems: MAX_VERIFY_BATCH, uniqueItems: true }) },
  { additionalProperties: false },
);
export type VerifyRequest = Static<typeof VerifyRequest>;

/** What a node learns about a key: its grants and limits, never its secret. */
export const VerifiedKey = Type.Object({
  id: Type.String({ minLength: 1 }),
  teamId: Type.String({ minLength: 1 }),
  status: Type.Enum(['active', 'revoked']),
  pools: Type.Array(Type.String()),
  countries: Type.Array(Type.String()),
  expiresAt: Nullable(Type.String({ format: 'date-time' })),
  rateLimit: Nullable(RateLimit),
  concurrency: Nullable(ConcurrencyLimit),
  /** The key's or its team's monthly byte quota is used up. */
  overQuota: Type.Boolean(),
  /** The key's team lets it ask for `Proxy-Debug: 1`. Optional: older control planes never send it. */
  debug: Type.Optional(Type.Boolean()),
  /**
   * Client addresses the key may be used from, as canonical CIDRs; absent or empty: any.
   * Absent from control planes older than the field.
   */
  allowedClientCidrs: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 1_000 })),
});
export type VerifiedKey = Static<typeof VerifiedKey>;

export const VerifyAnswer = Type.Object({
  /** By key hash (hex); unknown keys are absent. */
  keys: Type.Record(HashHex, VerifiedKey),
  /** The latest outbox seq in the snapshot the answer was read from. */
  seq: Seq,
  /** The epoch that seq belongs to: an answer from another epoch than the node's is not trusted. */
  epoch: FeedEpoch,
});
export type VerifyAnswer = Static<typeof VerifyAnswer>;

// Revocations: catching up on what the feed did not deliver.

export const RevocationsQuery = Type.Object(
  {
    after: Seq,
    limit: Type.Integer({ minimum: 1, maximum: MAX_REVOCATIONS_PAGE, default: 1000 }),
  },
  { additionalProperties: false },
);
export type RevocationsQuery = Static<typeof RevocationsQuery>;

export const RevocationsAnswer = Type.Object({
  events: Type.Array(ChangeEvent),
  latestSeq: Seq,
  /** The epoch of these seqs: a node of another epoch starts over instead of catching up. */
  epoch: FeedEpoch,
});
export type RevocationsAnswer = Static<typeof RevocationsAnswer>;

// Reports: which revocations a node applied, and its health.

export const AppliedRevocation = Type.Object(
  { seq: Type.Integer({ minimum: 1 }), appliedAt: Count, closedConnections: Count },
  { additionalProperties: false },
);
export type AppliedRevocation = Static<typeof AppliedRevocation>;

export const ExitHealth = Type.Object(
  {
    pool: Type.String({ maxLength: 63 }),
    country: Type.String({ minLength: 2, maxLength: 2 }),
    exits: Count,
    healthy: Count,
  },
  { additionalProperties: false },
);
export type ExitHealth = Static<typeof ExitHealth>;

export const NodeReport = Type.Object(
  {
    nodeId: Name,
    region: Name,
    appliedSeq: Type.Integer({ minimum: -1 }),
    /**
     * The epoch `appliedSeq` and `applied` belong to; absent from nodes that predate epochs,
     * whose reports then prove nothing.
     */
    epoch: Type.Optional(FeedEpoch),
    feedSilenceMs: Nullable(Count),
    openTunnels: Count,
    startedAt: Count,
    /** Revocations applied since the last report. */
    applied: Type.Array(AppliedRevocation, { maxItems: MAX_REPORTED_REVOCATIONS }),
    /** Exits per pool and country, and how many this node currently finds healthy. */
    exitHealth: Type.Optional(Type.Array(ExitHealth, { maxItems: 10_000 })),
  },
  { additionalProperties: false },
);
export type NodeReport = Static<typeof NodeReport>;

export const NodeReportAnswer = Type.Object({
  /** Live nodes in the reporting node's region: local limits are shared out over them. */
  regionNodes: Count,
});
export type NodeReportAnswer = Static<typeof NodeReportAnswer>;

// Usage: metered traffic, in numbered batches counted once each.

export const UsageEntry = Type.Object(
  { keyId: Name, teamId: Name, bytesIn: Count, bytesOut: Count, requests: Count, tunnels: Count },
  { additionalProperties: false },
);
export type UsageEntry = Static<typeof UsageEntry>;

export const UsageBatch = Type.Object(
  {
    nodeId: Name,
    /**
     * The node process's boot id: batch numbers start again at 1 in every process, so a batch
     * is known by node, boot and number. Nodes older than this field send none.
     */
    boot: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$' })),
    batch: Type.Integer({ minimum: 1 }),
    entries: Type.Array(UsageEntry, { maxItems: MAX_USAGE_ENTRIES }),
  },
  { additionalProperties: false },
);
export type UsageBatch = Static<typeof UsageBatch>;

export const UsageAnswer = Type.Object({
  /** The batch had been counted before (a retry); nothing was added. */
  duplicate: Type.Boolean(),
  /** Keys and teams this batch took over their quota. */
  exceeded: Count,
});
export type UsageAnswer = Static<typeof UsageAnswer>;

// Pools: where a node may send traffic.

/** A city as exits carry it and clients ask for it: a lowercase slug, `berlin`, `new_york`. */
export const CITY_PATTERN = '^[a-z][a-z0-9_]{0,63}$';
/** A state or region as a short code: `ca`, `by`, `nsw`. */
export const STATE_PATTERN = '^[a-z0-9]{1,3}$';
/** Autonomous system numbers are 32-bit; 0 is reserved. */
export const MAX_ASN = 4_294_967_295;

export const Exit = Type.Object({
  id: Type.String({ minLength: 1 }),
  country: Type.String({ minLength: 2, maxLength: 2 }),
  /** `direct`, or an upstream exit proxy `http://[user:password@]host:port`. */
  url: Type.String({ minLength: 1 }),
  // Finer targeting, all optional: an exit without them matches only requests that do not ask.
  city: Type.Optional(Type.String({ pattern: CITY_PATTERN })),
  state: Type.Optional(Type.String({ pattern: STATE_PATTERN })),
  asn: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ASN })),
});
export type Exit = Static<typeof Exit>;

export const Pool = Type.Object({
  name: Type.String({ minLength: 1 }),
  exits: Type.Array(Exit),
});
export type Pool = Static<typeof Pool>;

export const PoolsAnswer = Type.Object({ pools: Type.Array(Pool) });
export type PoolsAnswer = Static<typeof PoolsAnswer>;

/** The node's checks of every answer, compiled once. */
export const checkAnswer = {
  verify: compileCheck(VerifyAnswer),
  revocations: compileCheck(RevocationsAnswer),
  report: compileCheck(NodeReportAnswer),
  usage: compileCheck(UsageAnswer),
  pools: compileCheck(PoolsAnswer),
};
