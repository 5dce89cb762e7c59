import type { UsageAnswer, UsageBatch } from '../../contract/node-api.js';
import { SYSTEM_AUDIT, recordActivities } from '../activity/log.js';
import type { Database, Queryable } from '../db/database.js';
import { appendOutbox } from '../revocation/outbox.js';

/** This calendar month (UTC), as usage_monthly keys it. */
export const CURRENT_MONTH = `date_trunc('month', now() AT TIME ZONE 'UTC')::date`;

/**
 * Records a usage batch exactly once (a retried batch is recognised by node, boot and number),
 * keeps monthly totals, and when a key or team goes over its monthly byte quota, marks it
 * and publishes a quota event on the revocation feed — all in one transaction.
 */
export async function recordUsageBatch(db: Database, batch: UsageBatch): Promise<UsageAnswer> {
  return db.transaction(async (tx) => {
    const fresh = await tx.query('INSERT INTO usage_batches (node_id, boot, batch) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
      batch.nodeId,
      batch.boot ?? '',
      batch.batch,
    ]);
    if (fresh.rowCount === 0) return { duplicate: true, exceeded: 0 };
    if (batch.entries.length === 0) return { duplicate: false, exceeded: 0 };
    const column = <K extends keyof UsageBatch['entries'][number]>(name: K) => batch.entries.map((entry) => entry[name]);
    // Every row this transaction writes is locked in one global order, with the lock the
    // write needs, so that batches of different nodes for the same keys wait for each other
    // instead of deadlocking: the keys (in id order, for the UPDATE of last_used_at, which
    // also holds off a concurrent quota change until this commits), the teams with quotas
    // (in id order, shared: only read), then the usage rows, inserted in key order.
    await tx.query('SELECT 1 FROM api_keys WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE', [[...new Set(column('keyId'))]]);
    await tx.query('SELECT 1 FROM teams WHERE id = ANY($1) AND monthly_quota_bytes IS NOT NULL ORDER BY id FOR SHARE', [[...new Set(column('teamId'))]]);
    const params = [column('keyId'), column('teamId'), column('bytesIn'), column('bytesOut'), column('requests'), column('tunnels')];
    const rows = `unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
      AS entry(key_id, team_id, bytes_in, bytes_out, requests, tunnels)`;
    await tx.query(
      `INSERT INTO usage_hourly (key_id, team_id, hour, bytes_in, bytes_out, requests, tunnels)
       SELECT key_id, min(team_id), date_trunc('hour', now()), sum(bytes_in), sum(bytes_out), sum(requests), sum(tunnels)
       FROM ${rows} GROUP BY key_id ORDER BY key_id
       ON CONFLICT (key_id, hour) DO UPDATE SET
         bytes_in = usage_hourly.bytes_in + excluded.bytes_in, bytes_out = usage_hourly.bytes_out + excluded.bytes_out,
         requests = usage_hourly.requests + excluded.requests, tunnels = usage_hourly.tunnels + excluded.tunnels`,
      params,
    );
    await tx.query(
      `INSERT INTO usage_monthly (subject_type, subject_id, month, bytes)
       SELECT subject_type, subject_id, ${CURRENT_MONTH}, bytes FROM (
         SELECT 'key' AS subject_type, key_id AS subject_id, sum(bytes_in + bytes_out) AS bytes FROM ${rows} GROUP BY key_id
         UNION ALL
         SELECT 'team', team_id, sum(bytes_in + bytes_out) FROM ${rows} GROUP BY team_id
       ) totals ORDER BY subject_type, subject_id
       ON CONFLICT (subject_type, subject_id, month) DO UPDATE SET bytes = usage_monthly.bytes + excluded.bytes`,
      params,
    );
    await tx.query('UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1)', [[...new Set(column('keyId'))]]);
    return { duplicate: false, exceeded: await markExceeded(tx, [...new Set(column('keyId'))], [...new Set(column('teamId'))]) };
  });
}

/**
 * Marks keys and teams that just went over quota and publishes one event for each. Only the
 * batch's own rows are looked at (by primary key): scanning the month's rows of every key
 * made a batch take seconds once a few thousand keys had usage.
 */
async function markExceeded(tx: Queryable, keyIds: string[], teamIds: string[]): Promise<number> {
  const keys = await tx.query<{ id: string; team_id: string; key_hash: Uint8Array }>(
    `UPDATE usage_monthly u SET exceeded_at = now()
     FROM api_keys k
     WHERE u.subject_type = 'key' AND u.subject_id = ANY($1) AND u.subject_id = k.id AND u.month = ${CURRENT_MONTH} AND u.exceeded_at IS NULL
       AND k.id = ANY($1) AND k.monthly_quota_bytes IS NOT NULL AND u.bytes >= k.monthly_quota_bytes
     RETURNING k.id, k.team_id, k.key_hash`,
    [keyIds],
  );
  const teams = await tx.query<{ id: string }>(
    `UPDATE usage_monthly u SET exceeded_at = now()
     FROM teams t
     WHERE u.subject_type = 'team' AND u.subject_id = ANY($1) AND u.subject_id = t.id AND u.month = ${CURRENT_MONTH} AND u.exceeded_at IS NULL
       AND t.id = ANY($1) AND t.monthly_quota_bytes IS NOT NULL AND u.bytes >= t.monthly_quota_bytes
     RETURNING t.id`,
    [teamIds],
  );
  // One call for every entry: it locks the teams' chains in one order, so two nodes'
  // batches crossing the same teams cannot deadlock on them.
  await recordActivities(tx, SYSTEM_AUDIT, [
    ...keys.rows.map((key) => ({ teamId: key.team_id, action: 'key.quota_exceeded', targetType: 'key', targetId: key.id })),
    ...teams.rows.map((team) => ({ teamId: team.id, action: 'team.quota_exceeded', targetType: 'team', targetId: team.id })),
  ]);
  for (const key of keys.rows) await appendOutbox(tx, { kind: 'quota.exceeded', teamId: key.team_id, keyId: key.id, keyHash: Buffer.from(key.key_hash) });
  for (const team of teams.rows) await appendOutbox(tx, { kind: 'quota.exceeded', teamId: team.id, keyId: null, keyHash: null });
  return keys.rowCount + teams.rowCount;
}

/**
 * After a quota changes, this month's state follows it: raised above the usage, the key
 * or team is usable again; lowered below it, it is over quota at once.
 */
export async function reconcileQuota(tx: Queryable, subjectType: 'key' | 'team', subjectId: string, quota: number | null): Promise<void> {
  await tx.query(
    `UPDATE usage_monthly SET exceeded_at = CASE WHEN $3::bigint IS NOT NULL AND bytes >= $3::bigint THEN coalesce(exceeded_at, now()) END
     WHERE subject_type = $1 AND subject_id = $2 AND month = ${CURRENT_MONTH}`,
    [subjectType, subjectId, quota],
  );
}

/** Directions as a client sees them: up is client → target, down is target → client. */
export interface UsagePoint {
  start: string;
  bytesUp: number;
  bytesDown: number;
  requests: number;
  tunnels: number;
}

/** Usage of a team, or of one of its keys, in hourly or daily buckets. */
export async function usageSeries(
  db: Queryable,
  scope: { teamId: string; keyId?: string },
  from: Date,
  to: Date,
  granularity: 'hour' | 'day',
): Promise<UsagePoint[]> {
  const byKey = scope.keyId !== undefined;
  const { rows } = await db.query<{ bucket: Date; bytes_in: number; bytes_out: number; requests: number; tunnels: number }>(
    `SELECT date_trunc($1, hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
            sum(bytes_in)::bigint AS bytes_in, sum(bytes_out)::bigint AS bytes_out, sum(requests)::bigint AS requests, sum(tunnels)::bigint AS tunnels
     FROM usage_hourly
     WHERE ${byKey ? 'key_id = $2 AND team_id = $5' : 'team_id = $2'} AND hour >= $3 AND hour < $4
     GROUP BY 1 ORDER BY 1`,
    byKey ? [granularity, scope.keyId, from, to, scope.teamId] : [granularity, scope.teamId, from, to],
  );
  // Nodes report bytes in from the client (up) and out to it (down).
  return rows.map((row) => ({ start: row.bucket.toISOString(), bytesUp: row.bytes_in, bytesDown: row.bytes_out, requests: row.requests, tunnels: row.tunnels }));
}
