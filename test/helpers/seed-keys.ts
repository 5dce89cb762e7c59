import type { Queryable } from '../../control-plane/db/database.js';
import { sha256Hex } from '../../lib/hash.js';
import { apiKeyDisplayPrefix, generateApiKey, generateId } from '../../lib/secret-format.js';

export interface SeedOptions {
  teamId: string;
  count: number;
  /** Distinguishes rows of separate seed calls for the same team. */
  batch?: string;
  /** Every n-th key is revoked (0: none). */
  revokedEvery?: number;
}

/**
 * Inserts `count` keys for a team in one set-based statement. Keys get distinct
 * creation times one millisecond apart, ending a day ago, and names `seed-<batch>-<n>`.
 * Their hashes are not of real secrets: seeded keys are for listing, not for proxying.
 */
export async function seedKeys(db: Queryable, { teamId, count, batch = 'a', revokedEvery = 10 }: SeedOptions): Promise<void> {
  await db.query(
    `INSERT INTO api_keys (id, team_id, name, prefix, key_hash, status, revoked_at, created_at, updated_at)
     SELECT 'key_seed' || $3 || substr(md5($1), 1, 6) || lpad(g::text, 8, '0'),
            $1,
            'seed-' || $3 || '-' || lpad(g::text, 7, '0'),
            'sk_live_' || substr(md5($1 || $3 || g::text), 1, 6),
            sha256(convert_to($1 || ':' || $3 || ':' || g::text, 'UTF8')),
            CASE WHEN $4 > 0 AND g % $4 = 0 THEN 'revoked' ELSE 'active' END,
            CASE WHEN $4 > 0 AND g % $4 = 0 THEN now() ELSE NULL END,
            now() - interval '1 day' - (g * interval '1 millisecond'),
            now() - interval '1 day'
     FROM generate_series(1, $2::int) AS g`,
    [teamId, count, batch, revokedEvery],
  );
  // As autovacuum would in production: statistics for the planner, a visibility map for index-only scans.
  await db.query('VACUUM ANALYZE api_keys');
}

/** Inserts `count` usable keys for a team in one statement and returns their secrets. */
export async function seedUsableKeys(db: Queryable, teamId: string, count: number): Promise<string[]> {
  const secrets = Array.from({ length: count }, () => generateApiKey());
  await db.query(
    `INSERT INTO api_keys (id, team_id, name, prefix, key_hash)
     SELECT id, $1, 'usable-' || id, prefix, decode(hash, 'hex')
     FROM unnest($2::text[], $3::text[], $4::text[]) AS seeded(id, prefix, hash)`,
    [teamId, secrets.map(() => generateId('key')), secrets.map(apiKeyDisplayPrefix), secrets.map(sha256Hex)],
  );
  return secrets;
}
