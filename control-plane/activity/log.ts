import type { FastifyRequest } from 'fastify';
import { generateId } from '../../lib/secret-format.js';
import type { Queryable } from '../db/database.js';
import { principalOf } from '../http/auth.js';
import { chainOf, entryHash, storedDetails, type ChainedEntry } from './chain.js';

/** Who did it and from where; taken from the request that caused the change. */
export interface AuditContext {
  actorType: 'admin' | 'team_token' | 'system';
  actorId: string | null;
  requestId: string | null;
  ip: string | null;
  /** The request's `traceparent` when tracing is on: outbox rows written for it carry it. */
  traceparent?: string | null;
}

export interface ActivityEntry {
  teamId: string | null;
  action: string;
  targetType: string;
  targetId: string;
  details?: Record<string, unknown>;
}

export function auditContextOf(request: FastifyRequest): AuditContext {
  const principal = principalOf(request);
  return {
    actorType: principal.kind === 'admin' ? 'admin' : 'team_token',
    actorId: principal.tokenId,
    requestId: request.id,
    ip: request.ip,
    traceparent: request.traceparent,
  };
}

export const SYSTEM_AUDIT: AuditContext = { actorType: 'system', actorId: null, requestId: null, ip: null };

/**
 * Writes an activity entry. Always called with the transaction that makes the change,
 * so the change and its entry commit together or not at all.
 */
export async function recordActivity(tx: Queryable, context: AuditContext, entry: ActivityEntry): Promise<void> {
  await recordActivities(tx, context, [entry]);
}

/**
 * Writes many entries in one statement, for calls that change many things at once. Each
 * entry is appended to its team's hash chain: the chain heads are locked (in one order,
 * so two writers touching the same teams cannot deadlock) until the transaction ends,
 * which appends a team's entries one transaction at a time and never forks its chain.
 */
export async function recordActivities(tx: Queryable, context: AuditContext, entries: readonly ActivityEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const chains = [...new Set(entries.map((entry) => chainOf(entry.teamId)))].sort();
  const { rows: heads } = await tx.query<{ chain: string; seq: number; hash: string | null; now: Date }>(
    `INSERT INTO activity_chains (chain, seq, hash)
     SELECT chain, 0, NULL FROM unnest($1::text[]) AS chain ORDER BY chain
     ON CONFLICT (chain) DO UPDATE SET seq = activity_chains.seq
     RETURNING chain, seq, hash, date_trunc('milliseconds', clock_timestamp()) AS now`,
    [chains],
  );
  const tips = new Map(heads.map((head) => [head.chain, { seq: head.seq, hash: head.hash }]));
  const createdAt = heads[0]!.now.toISOString();
  const chained = entries.map((entry): ChainedEntry & { hash: string } => {
    const tip = tips.get(chainOf(entry.teamId))!;
    const fields: ChainedEntry = {
      seq: tip.seq + 1,
      prevHash: tip.hash,
      id: generateId('act'),
      teamId: entry.teamId,
      actorType: context.actorType,
      actorId: context.actorId,
      action: entry.action,
      targetType: entry.targetType,
      targetId: entry.targetId,
      requestId: context.requestId,
      ip: context.ip,
      details: storedDetails(entry.details),
      createdAt,
    };
    const hash = entryHash(fields);
    tip.seq = fields.seq;
    tip.hash = hash;
    return { ...fields, hash };
  });
  const column = <T>(pick: (entry: ChainedEntry & { hash: string }) => T) => chained.map(pick);
  await tx.query(
    `INSERT INTO activity (id, team_id, actor_type, actor_id, action, target_type, target_id, request_id, ip, details, created_at, chain_seq, prev_hash, hash)
     SELECT id, team_id, $1, $2, action, target_type, target_id, $3, $4, details, $5::timestamptz, chain_seq, prev_hash, hash
     FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::bigint[], $13::text[], $14::text[])
       AS entry(id, team_id, action, target_type, target_id, details, chain_seq, prev_hash, hash)`,
    [
      context.actorType,
      context.actorId,
      context.requestId,
      context.ip,
      createdAt,
      column((entry) => entry.id),
      column((entry) => entry.teamId),
      column((entry) => entry.action),
      column((entry) => entry.targetType),
      column((entry) => entry.targetId),
      column((entry) => JSON.stringify(entry.details)),
      column((entry) => entry.seq),
      column((entry) => entry.prevHash),
      column((entry) => entry.hash),
    ],
  );
  await tx.query(
    `UPDATE activity_chains SET seq = tip.seq, hash = tip.hash
     FROM unnest($1::text[], $2::bigint[], $3::text[]) AS tip(chain, seq, hash)
     WHERE activity_chains.chain = tip.chain`,
    [[...tips.keys()], [...tips.values()].map((tip) => tip.seq), [...tips.values()].map((tip) => tip.hash)],
  );
}
