import type { VerifiedKey } from '../../contract/node-api.js';
import type { Queryable } from '../db/database.js';
import { concurrencyOf, rateLimitOf, type KeyRow } from '../keys/rows.js';
import type { SqlQuery } from '../keys/list.js';
import { CURRENT_EPOCH } from '../revocation/feed-epoch.js';

/** The statement behind `findKeysByHashes`, exported so a test can EXPLAIN it. */
export function keysByHashesQuery(hashesHex: readonly string[]): SqlQuery {
  return {
    sql: `SELECT snapshot.seq, snapshot.epoch, encode(k.key_hash, 'hex') AS hash, k.id, k.team_id, k.status, k.pools, k.countries, k.expires_at,
                 k.rate_limit_per_second, k.rate_limit_burst, k.max_concurrent_per_node, k.max_concurrent_per_region, k.allowed_client_cidrs,
                 EXISTS (
                   SELECT 1 FROM usage_monthly u
                   WHERE u.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date AND u.exceeded_at IS NOT NULL
                     AND ((u.subject_type = 'key' AND u.subject_id = k.id) OR (u.subject_type = 'team' AND u.subject_id = k.team_id))
                 ) AS over_quota,
                 (SELECT t.debug_enabled FROM teams t WHERE t.id = k.team_id) AS debug_enabled
          FROM (SELECT coalesce(max(seq), 0) AS seq, ${CURRENT_EPOCH} AS epoch FROM outbox) snapshot
          LEFT JOIN api_keys k ON k.key_hash = ANY (SELECT decode(wanted, 'hex') FROM unnest($1::text[]) AS wanted)`,
    params: [hashesHex],
  };
}

/**
 * The proxy node's lookup, for a batch of hashes (hex) at once: one index probe each. The
 * latest outbox seq and its epoch are read in the same statement (one snapshot): a node can
 * then tell whether a revocation it has applied is newer than this answer, and must not
 * cache it. Unknown hashes are absent from the map.
 */
export async function findKeysByHashes(db: Queryable, hashesHex: readonly string[]): Promise<{ keys: Map<string, VerifiedKey>; seq: number; epoch: string }> {
  const query = keysByHashesQuery(hashesHex);
  const { rows } = await db.query<KeyRow & { seq: number; epoch: string; hash: string | null; over_quota: boolean; debug_enabled: boolean }>(query.sql, query.params);
  const keys = new Map<string, VerifiedKey>();
  for (const row of rows) {
    if (row.hash === null) continue;
    keys.set(row.hash, {
      id: row.id,
      teamId: row.team_id,
      status: row.status,
      pools: row.pools,
      countries: row.countries,
      expiresAt: row.expires_at?.toISOString() ?? null,
      rateLimit: rateLimitOf(row),
      concurrency: concurrencyOf(row),
      overQuota: row.over_quota,
      ...(row.debug_enabled && { debug: true }),
      allowedClientCidrs: row.allowed_client_cidrs,
    });
  }
  return { keys, seq: rows[0]!.seq, epoch: rows[0]!.epoch };
}
