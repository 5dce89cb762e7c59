import type { FastifyRequest } from 'fastify';
import { generateId } from '../../lib/secret-format.js';
import type { Queryable } from '../db/database.js';
import { principalOf } from '../http/auth.js';

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
  await tx.query(
    `INSERT INTO activity (id, team_id, actor_type, actor_id, action, target_type, target_id, request_id, ip, details)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      generateId('act'),
      entry.teamId,
      context.actorType,
      context.actorId,
      entry.action,
      entry.targetType,
      entry.targetId,
      context.requestId,
      context.ip,
      JSON.stringify(entry.details ?? {}),
    ],
  );
}

/** Writes many entries in one statement, for calls that change many things at once. */
export async function recordActivities(tx: Queryable, context: AuditContext, entries: readonly ActivityEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const column = <T>(pick: (entry: ActivityEntry) => T) => entries.map(pick);
  await tx.query(
    `INSERT INTO activity (id, team_id, actor_type, actor_id, action, target_type, target_id, request_id, ip, details)
     SELECT id, team_id, $1, $2, action, target_type, target_id, $3, $4, details
     FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[]) AS entry(id, team_id, action, target_type, target_id, details)`,
    [
      context.actorType,
      context.actorId,
      context.requestId,
      context.ip,
      column(() => generateId('act')),
      column((entry) => entry.teamId),
      column((entry) => entry.action),
      column((entry) => entry.targetType),
      column((entry) => entry.targetId),
      column((entry) => JSON.stringify(entry.details ?? {})),
    ],
  );
}
