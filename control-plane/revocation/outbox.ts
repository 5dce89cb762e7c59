import { POOLS_CHANGED, type AccessEventKind, type ChangeEvent, type FeedEventKind } from '../../contract/feed.js';
import type { Queryable } from '../db/database.js';

/** Arbitrary constant: the advisory lock held while drawing an outbox sequence number. */
const OUTBOX_LOCK = 7_301_002;
export const OUTBOX_CHANNEL = 'portcullis_outbox';


export type OutboxEvent =
  | {
      kind: AccessEventKind;
      teamId: string;
      /** Null for events about a whole team. */
      keyId: string | null;
      /** The hash nodes must evict (for a rotation, the old secret's hash); null for team events. */
      keyHash: Buffer | null;
      /** The `traceparent` of the call making the change, when it is traced. */
      traceparent?: string | null;
    }
  /** Pools belong to no team: nodes fetch them all again. */
  | { kind: typeof POOLS_CHANGED; teamId: null; keyId: null; keyHash: null };

/**
 * Appends an event for the relay. Holding a transaction-scoped lock from `nextval` to
 * commit makes sequence order equal commit order, so the relay reading `seq > cursor`
 * can never pass over a row that commits later with a smaller seq. Call it as the last
 * statement of the transaction to keep the lock short.
 */
export async function appendOutbox(tx: Queryable, event: OutboxEvent): Promise<number> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [OUTBOX_LOCK]);
  const { rows } = await tx.query<{ seq: number }>(
    `INSERT INTO outbox (seq, kind, team_id, key_id, key_hash, trace_parent)
     VALUES (nextval('outbox_seq'), $1, $2, $3, $4, $5) RETURNING seq`,
    [event.kind, event.teamId, event.keyId, event.keyHash, ('traceparent' in event && event.traceparent) || null],
  );
  // Delivered at commit: wakes the relay at once instead of at its next poll.
  await tx.query(`SELECT pg_notify('${OUTBOX_CHANNEL}', '')`);
  return rows[0]!.seq;
}

export interface OutboxRow {
  seq: number;
  kind: FeedEventKind;
  team_id: string | null;
  key_id: string | null;
  key_hash: Uint8Array | null;
  created_at: Date;
  trace_parent: string | null;
}

export const OUTBOX_COLUMNS = 'seq, kind, team_id, key_id, key_hash, created_at, trace_parent';

/** An outbox row as the feed and the node API carry it. */
export function toChangeEvent(row: OutboxRow): ChangeEvent {
  const at = row.created_at.getTime();
  if (row.kind === POOLS_CHANGED) return { seq: row.seq, kind: row.kind, teamId: null, keyId: null, keyHash: null, at };
  return {
    seq: row.seq,
    kind: row.kind,
    // The table's check constraint holds every event but a pool change to a team.
    teamId: row.team_id!,
    keyId: row.key_id,
    keyHash: row.key_hash === null ? null : Buffer.from(row.key_hash).toString('hex'),
    at,
    ...(row.trace_parent !== null && { traceparent: row.trace_parent }),
  };
}
