import type { Queryable } from '../db/database.js';
import { entryHash, type ChainedEntry } from './chain.js';

/** Entries read per query when walking or exporting a chain. */
export const CHAIN_PAGE = 1_000;

interface ChainRow {
  id: string;
  team_id: string | null;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string;
  request_id: string | null;
  ip: string | null;
  details: unknown;
  created_at: Date;
  chain_seq: number;
  prev_hash: string | null;
  hash: string | null;
}

export type ExportedEntry = ChainedEntry & { hash: string | null };

function toEntry(row: ChainRow): ExportedEntry {
  return {
    seq: row.chain_seq,
    prevHash: row.prev_hash,
    id: row.id,
    teamId: row.team_id,
    actorType: row.actor_type,
    actorId: row.actor_id,
    action: row.action,
    targetType: row.target_type,
    targetId: row.target_id,
    requestId: row.request_id,
    ip: row.ip,
    details: row.details,
    createdAt: row.created_at.toISOString(),
    hash: row.hash,
  };
}

/**
 * The chained entries of a team (null: the platform's chain) after `afterSeq`, in chain
 * order: one page, found through the chain's unique index.
 */
export async function readChainPage(db: Queryable, teamId: string | null, afterSeq: number, limit = CHAIN_PAGE): Promise<ExportedEntry[]> {
  const { rows } = await db.query<ChainRow>(
    `SELECT id, team_id, actor_type, actor_id, action, target_type, target_id, request_id, ip, details, created_at, chain_seq, prev_hash, hash
     FROM activity
     WHERE ${teamId === null ? 'team_id IS NULL AND $1::text IS NULL' : 'team_id = $1'} AND chain_seq IS NOT NULL AND chain_seq > $2
     ORDER BY chain_seq LIMIT $3`,
    [teamId, afterSeq, limit],
  );
  return rows.map(toEntry);
}

/** The chain's pages, one at a time: memory stays at one page whatever the log's length. */
export async function* chainPages(db: Queryable, teamId: string | null): AsyncGenerator<ExportedEntry[]> {
  let after = 0;
  for (;;) {
    const page = await readChainPage(db, teamId, after);
    if (page.length > 0) yield page;
    if (page.length < CHAIN_PAGE) return;
    after = page[page.length - 1]!.seq;
  }
}

export type ChainProblem = 'entry_altered' | 'link_broken' | 'entry_missing' | 'head_mismatch' | 'entry_unchained';

export interface ChainVerdict {
  intact: boolean;
  /** Chained entries checked. */
  entries: number;
  /** The chain's head as recorded by writers; null before the first chained entry. */
  head: { seq: number; hash: string | null } | null;
  /** The first thing wrong, in chain order; null when intact. */
  firstBroken: { seq: number | null; id: string | null; problem: ChainProblem; message: string } | null;
}

/**
 * Walks a chain from its first entry: recomputes each entry's hash, checks that it links
 * to the one before, that no position is missing, and that the chain ends at its recorded
 * head. Stops at the first problem, which names the entry.
 */
export async function verifyChain(db: Queryable, teamId: string | null): Promise<ChainVerdict> {
  const { rows: heads } = await db.query<{ seq: number; hash: string | null }>('SELECT seq, hash FROM activity_chains WHERE chain = $1', [teamId ?? '']);
  const head = heads[0] ?? null;
  let entries = 0;
  let previous: ExportedEntry | undefined;
  let firstCreatedAt: string | undefined;
  const broken = (entry: { seq: number | null; id: string } | null, problem: ChainProblem, message: string): ChainVerdict => ({
    intact: false,
    entries,
    head,
    firstBroken: { seq: entry?.seq ?? null, id: entry?.id ?? null, problem, message },
  });
  for await (const page of chainPages(db, teamId)) {
    for (const entry of page) {
      const expectedSeq = (previous?.seq ?? 0) + 1;
      if (entry.seq !== expectedSeq) {
        return broken(entry, 'entry_missing', `entry ${expectedSeq}${entry.seq > expectedSeq + 1 ? ` to ${entry.seq - 1}` : ''} is missing before entry ${entry.seq} (${entry.id})`);
      }
      if (entry.prevHash !== (previous?.hash ?? null)) {
        return broken(entry, 'link_broken', `entry ${entry.seq} (${entry.id}) does not link to the hash of entry ${expectedSeq - 1}: one of them was changed`);
      }
      const { hash, ...fields } = entry;
      if (entryHash(fields) !== hash) {
        return broken(entry, 'entry_altered', `entry ${entry.seq} (${entry.id}) was changed after it was written: its hash does not match its content`);
      }
      firstCreatedAt ??= entry.createdAt;
      previous = entry;
      entries++;
    }
  }
  if ((head?.seq ?? 0) !== (previous?.seq ?? 0) || (head?.hash ?? null) !== (previous?.hash ?? null)) {
    return broken(null, 'head_mismatch', `the chain ends at entry ${previous?.seq ?? 0} but its recorded head is entry ${head?.seq ?? 0}: entries at the end were removed, or the head was changed`);
  }
  if (firstCreatedAt !== undefined) {
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM activity
       WHERE ${teamId === null ? 'team_id IS NULL AND $1::text IS NULL' : 'team_id = $1'} AND created_at >= $2 AND chain_seq IS NULL
       ORDER BY created_at, id LIMIT 1`,
      [teamId, firstCreatedAt],
    );
    if (rows[0] !== undefined) {
      return broken({ seq: null, id: rows[0].id }, 'entry_unchained', `entry ${rows[0].id} is outside the chain but was written after it started: it was added behind the log's back`);
    }
  }
  return { intact: true, entries, head, firstBroken: null };
}
