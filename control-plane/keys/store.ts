import { sha256 } from '../../lib/hash.js';
import { apiKeyDisplayPrefix, generateApiKey, generateId, API_KEY_PREFIX } from '../../lib/secret-format.js';
import { ApiError } from '../errors.js';
import type { Queryable } from '../db/database.js';
import { recordActivity, type AuditContext } from '../activity/log.js';
import { appendOutbox } from '../revocation/outbox.js';
import type { Total, TotalCache } from './total-cache.js';
import { reconcileQuota } from '../usage/store.js';

/** Above this many matches a list reports "10,000+" instead of counting further. */
export const TOTAL_CAP = 10_000;

export type KeyStatus = 'active' | 'revoked' | 'expired';

export interface RateLimit {
  requestsPerSecond: number;
  burst: number;
}

export interface ConcurrencyLimit {
  perNode: number | null;
  perRegion: number | null;
}

export interface KeyGrants {
  pools: string[];
  countries: string[];
  expiresAt: Date | null;
  rateLimit: RateLimit | null;
  concurrency: ConcurrencyLimit | null;
  monthlyQuotaBytes: number | null;
}

interface KeyRow {
  id: string;
  team_id: string;
  name: string;
  prefix: string;
  status: 'active' | 'revoked';
  pools: string[];
  countries: string[];
  expires_at: Date | null;
  rate_limit_per_second: number | null;
  rate_limit_burst: number | null;
  max_concurrent_per_node: number | null;
  max_concurrent_per_region: number | null;
  monthly_quota_bytes: number | null;
  created_at: Date;
  updated_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  position: string;
}

export interface KeyView {
  id: string;
  teamId: string;
  name: string;
  prefix: string;
  status: KeyStatus;
  pools: string[];
  countries: string[];
  expiresAt: string | null;
  rateLimit: RateLimit | null;
  concurrency: ConcurrencyLimit | null;
  monthlyQuotaBytes: number | null;
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const KEY_COLUMNS = `id, team_id, name, prefix, status, pools, countries, expires_at, rate_limit_per_second,
  rate_limit_burst, max_concurrent_per_node, max_concurrent_per_region, monthly_quota_bytes,
  created_at, updated_at, last_used_at, revoked_at, created_at::text AS position`;

function rateLimitOf(row: Pick<KeyRow, 'rate_limit_per_second' | 'rate_limit_burst'>): RateLimit | null {
  return row.rate_limit_per_second === null ? null : { requestsPerSecond: row.rate_limit_per_second, burst: row.rate_limit_burst ?? row.rate_limit_per_second };
}

function concurrencyOf(row: Pick<KeyRow, 'max_concurrent_per_node' | 'max_concurrent_per_region'>): ConcurrencyLimit | null {
  if (row.max_concurrent_per_node === null && row.max_concurrent_per_region === null) return null;
  return { perNode: row.max_concurrent_per_node, perRegion: row.max_concurrent_per_region };
}

function statusOf(row: KeyRow, now: number): KeyStatus {
  if (row.status === 'revoked') return 'revoked';
  return row.expires_at !== null && row.expires_at.getTime() <= now ? 'expired' : 'active';
}

export function renderKey(row: KeyRow, now = Date.now()): KeyView {
  return {
    id: row.id,
    teamId: row.team_id,
    name: row.name,
    prefix: row.prefix,
    status: statusOf(row, now),
    pools: row.pools,
    countries: row.countries,
    expiresAt: row.expires_at?.toISOString() ?? null,
    rateLimit: rateLimitOf(row),
    concurrency: concurrencyOf(row),
    monthlyQuotaBytes: row.monthly_quota_bytes,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}

export const keyPosition = (row: KeyRow): string[] => [row.position, row.id];

const NAME_TAKEN = 'api_keys_active_name_unique';

function isUniqueViolation(error: unknown, constraint: string): boolean {
  const candidate = error as { code?: string; constraint?: string; message?: string };
  // PGlite reports the constraint in the message only.
  return candidate.code === '23505' && (candidate.constraint === constraint || (candidate.message ?? '').includes(constraint));
}

const nameTaken = (name: string) => new ApiError(409, 'key_name_taken', `an active key named "${name}" already exists in this team`);

export interface CreatedKey {
  view: KeyView;
  secret: string;
}

export async function createKey(tx: Queryable, audit: AuditContext, teamId: string, name: string, grants: KeyGrants): Promise<CreatedKey> {
  const secret = generateApiKey();
  let row: KeyRow;
  try {
    const result = await tx.query<KeyRow>(
      `INSERT INTO api_keys (id, team_id, name, prefix, key_hash, pools, countries, expires_at, rate_limit_per_second, rate_limit_burst,
         max_concurrent_per_node, max_concurrent_per_region, monthly_quota_bytes)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING ${KEY_COLUMNS}`,
      [
        generateId('key'),
        teamId,
        name,
        apiKeyDisplayPrefix(secret),
        sha256(secret),
        grants.pools,
        grants.countries,
        grants.expiresAt,
        grants.rateLimit?.requestsPerSecond ?? null,
        grants.rateLimit?.burst ?? null,
        grants.concurrency?.perNode ?? null,
        grants.concurrency?.perRegion ?? null,
        grants.monthlyQuotaBytes,
      ],
    );
    row = result.rows[0]!;
  } catch (error) {
    if (isUniqueViolation(error, NAME_TAKEN)) throw nameTaken(name);
    throw error;
  }
  await recordActivity(tx, audit, {
    teamId,
    action: 'key.created',
    targetType: 'key',
    targetId: row.id,
    details: { name, prefix: row.prefix, pools: grants.pools, countries: grants.countries },
  });
  return { view: renderKey(row), secret };
}

export async function getKey(db: Queryable, teamId: string, keyId: string): Promise<KeyView> {
  const { rows } = await db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = $1 AND team_id = $2`, [keyId, teamId]);
  const row = rows[0];
  if (row === undefined) throw new ApiError(404, 'key_not_found', 'key not found');
  return renderKey(row);
}

async function lockKey(tx: Queryable, teamId: string, keyId: string): Promise<KeyRow & { key_hash: Buffer }> {
  const { rows } = await tx.query<KeyRow & { key_hash: Uint8Array }>(
    `SELECT ${KEY_COLUMNS}, key_hash FROM api_keys WHERE id = $1 AND team_id = $2 FOR UPDATE`,
    [keyId, teamId],
  );
  const row = rows[0];
  if (row === undefined) throw new ApiError(404, 'key_not_found', 'key not found');
  return { ...row, key_hash: Buffer.from(row.key_hash) };
}

const revokedConflict = () => new ApiError(409, 'key_revoked', 'the key is revoked; create a new key instead');

export interface KeyChanges {
  name?: string;
  pools?: string[];
  countries?: string[];
  expiresAt?: Date | null;
  rateLimit?: RateLimit | null;
  concurrency?: ConcurrencyLimit | null;
  monthlyQuotaBytes?: number | null;
}

export async function updateKey(tx: Queryable, audit: AuditContext, teamId: string, keyId: string, changes: KeyChanges): Promise<KeyView> {
  const before = await lockKey(tx, teamId, keyId);
  if (before.status === 'revoked') throw revokedConflict();
  const beforeView = renderKey(before);
  let row: KeyRow;
  try {
    const result = await tx.query<KeyRow>(
      `UPDATE api_keys SET
         name = $3, pools = $4, countries = $5, expires_at = $6,
         rate_limit_per_second = $7, rate_limit_burst = $8, max_concurrent_per_node = $9, max_concurrent_per_region = $10,
         monthly_quota_bytes = $11, updated_at = clock_timestamp()
       WHERE id = $1 AND team_id = $2 RETURNING ${KEY_COLUMNS}`,
      [
        keyId,
        teamId,
        changes.name ?? before.name,
        changes.pools ?? before.pools,
        changes.countries ?? before.countries,
        changes.expiresAt === undefined ? before.expires_at : changes.expiresAt,
        changes.rateLimit === undefined ? before.rate_limit_per_second : (changes.rateLimit?.requestsPerSecond ?? null),
        changes.rateLimit === undefined ? before.rate_limit_burst : (changes.rateLimit?.burst ?? null),
        changes.concurrency === undefined ? before.max_concurrent_per_node : (changes.concurrency?.perNode ?? null),
        changes.concurrency === undefined ? before.max_concurrent_per_region : (changes.concurrency?.perRegion ?? null),
        changes.monthlyQuotaBytes === undefined ? before.monthly_quota_bytes : changes.monthlyQuotaBytes,
      ],
    );
    row = result.rows[0]!;
  } catch (error) {
    if (isUniqueViolation(error, NAME_TAKEN)) throw nameTaken(changes.name ?? before.name);
    throw error;
  }
  const after = renderKey(row);
  const changed: Record<string, { from: unknown; to: unknown }> = {};
  for (const field of ['name', 'pools', 'countries', 'expiresAt', 'rateLimit', 'concurrency', 'monthlyQuotaBytes'] as const) {
    if (JSON.stringify(beforeView[field]) !== JSON.stringify(after[field])) changed[field] = { from: beforeView[field], to: after[field] };
  }
  await recordActivity(tx, audit, { teamId, action: 'key.updated', targetType: 'key', targetId: keyId, details: { changes: changed } });
  if ('monthlyQuotaBytes' in changed) await reconcileQuota(tx, 'key', keyId, after.monthlyQuotaBytes);
  const grantsChanged = Object.keys(changed).some((field) => field !== 'name');
  // Nodes cache grants; tell them to forget this key so narrowed grants bite at once.
  if (grantsChanged) await appendOutbox(tx, { kind: 'key.updated', teamId, keyId, keyHash: before.key_hash });
  return after;
}

export interface RevokeResult {
  view: KeyView;
  /** False when the key was already revoked: nothing changed and nothing was logged. */
  changed: boolean;
}

export async function revokeKey(tx: Queryable, audit: AuditContext, teamId: string, keyId: string): Promise<RevokeResult> {
  const before = await lockKey(tx, teamId, keyId);
  if (before.status === 'revoked') return { view: renderKey(before), changed: false };
  const { rows } = await tx.query<KeyRow>(
    `UPDATE api_keys SET status = 'revoked', revoked_at = clock_timestamp(), updated_at = clock_timestamp()
     WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
    [keyId],
  );
  await recordActivity(tx, audit, {
    teamId,
    action: 'key.revoked',
    targetType: 'key',
    targetId: keyId,
    details: { name: before.name, prefix: before.prefix, revocation: `/v1/teams/${teamId}/keys/${keyId}/revocation` },
  });
  await appendOutbox(tx, { kind: 'key.revoked', teamId, keyId, keyHash: before.key_hash });
  return { view: renderKey(rows[0]!), changed: true };
}

/** Replaces the secret of a key; the old secret stops working everywhere like a revocation. */
export async function rotateKey(tx: Queryable, audit: AuditContext, teamId: string, keyId: string): Promise<CreatedKey> {
  const before = await lockKey(tx, teamId, keyId);
  if (before.status === 'revoked') throw revokedConflict();
  const secret = generateApiKey();
  const { rows } = await tx.query<KeyRow>(
    `UPDATE api_keys SET key_hash = $2, prefix = $3, updated_at = clock_timestamp()
     WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
    [keyId, sha256(secret), apiKeyDisplayPrefix(secret)],
  );
  const row = rows[0]!;
  await recordActivity(tx, audit, {
    teamId,
    action: 'key.rotated',
    targetType: 'key',
    targetId: keyId,
    details: { previousPrefix: before.prefix, prefix: row.prefix, revocation: `/v1/teams/${teamId}/keys/${keyId}/revocation` },
  });
  await appendOutbox(tx, { kind: 'key.rotated', teamId, keyId, keyHash: before.key_hash });
  return { view: renderKey(row), secret };
}

export interface KeyListFilter {
  status?: KeyStatus;
  q?: string;
}

/** The smallest string greater than every string starting with `prefix` (byte order). */
function prefixUpperBound(prefix: string): string {
  const last = prefix.codePointAt(prefix.length - 1)!;
  if (last >= 0x10ffff) return `${prefix}\u{10ffff}`;
  const head = prefix.slice(0, prefix.length - (last > 0xffff ? 2 : 1));
  return head + String.fromCodePoint(last + 1);
}

/**
 * The WHERE clause for a filter. Every variant leads with `team_id = $1` and is served by
 * an index (see 0001_init.sql); search is a case-insensitive prefix match on the name,
 * or on the key's public prefix when the query starts with `sk_live_`.
 */
function filterClause(filter: KeyListFilter, params: unknown[]): string {
  const parts = ['team_id = $1'];
  switch (filter.status) {
    case 'active':
      parts.push(`status = 'active' AND (expires_at IS NULL OR expires_at > now())`);
      break;
    case 'revoked':
      parts.push(`status = 'revoked'`);
      break;
    case 'expired':
      parts.push(`status = 'active' AND expires_at IS NOT NULL AND expires_at <= now()`);
      break;
  }
  if (filter.q !== undefined && filter.q !== '') {
    const byPrefix = filter.q.startsWith(API_KEY_PREFIX);
    const column = byPrefix ? `(prefix COLLATE "C")` : `(lower(name) COLLATE "C")`;
    const needle = byPrefix ? filter.q.slice(0, apiKeyDisplayPrefix(filter.q).length) : filter.q.toLowerCase();
    params.push(needle, prefixUpperBound(needle));
    parts.push(`${column} >= $${params.length - 1} AND ${column} < $${params.length}`);
  }
  return parts.join(' AND ');
}

export interface SqlQuery {
  sql: string;
  params: unknown[];
}

/**
 * The SQL of one list page and, for the first page, of its capped total. Exported so a
 * test can EXPLAIN exactly what the API runs.
 */
export function keyListQueries(teamId: string, filter: KeyListFilter, limit: number, after: string[] | undefined): { page: SqlQuery; total?: SqlQuery } {
  const params: unknown[] = [teamId];
  const where = filterClause(filter, params);
  const pageParams = [...params];
  let keyset = '';
  if (after !== undefined) {
    pageParams.push(after[0], after[1]);
    keyset = ` AND (created_at, id) < ($${pageParams.length - 1}::timestamptz, $${pageParams.length})`;
  }
  pageParams.push(limit + 1);
  const page = {
    sql: `SELECT ${KEY_COLUMNS} FROM api_keys WHERE ${where}${keyset} ORDER BY created_at DESC, id DESC LIMIT $${pageParams.length}`,
    params: pageParams,
  };
  if (after !== undefined) return { page };
  // Counting stops at the cap, so the first page costs the same for 10k or 1M keys.
  params.push(TOTAL_CAP + 1);
  return {
    page,
    // Ordered like the page, so the count walks the same index instead of the table.
    total: {
      sql: `SELECT count(*) AS count FROM (SELECT 1 FROM api_keys WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $${params.length}) matching`,
      params,
    },
  };
}

export interface KeyListPage {
  rows: KeyRow[];
  total?: Total;
}

export async function listKeys(
  db: Queryable,
  teamId: string,
  filter: KeyListFilter,
  limit: number,
  after: string[] | undefined,
  totals: TotalCache,
): Promise<KeyListPage> {
  const queries = keyListQueries(teamId, filter, limit, after);
  const totalQuery = queries.total;
  const [page, total] = await Promise.all([
    db.query<KeyRow>(queries.page.sql, queries.page.params),
    totalQuery === undefined
      ? undefined
      : totals.get(teamId, `${filter.status ?? ''}\0${filter.q ?? ''}`, async () => {
          const count = (await db.query<{ count: number }>(totalQuery.sql, totalQuery.params)).rows[0]!.count;
          return { count: Math.min(count, TOTAL_CAP), capped: count > TOTAL_CAP };
        }),
  ]);
  return total === undefined ? { rows: page.rows } : { rows: page.rows, total };
}

export interface VerifiedKey {
  id: string;
  teamId: string;
  status: 'active' | 'revoked';
  pools: string[];
  countries: string[];
  expiresAt: string | null;
  rateLimit: RateLimit | null;
  concurrency: ConcurrencyLimit | null;
  /** The key's or its team's monthly byte quota is used up. */
  overQuota: boolean;
}

/** The statement behind `findKeysByHashes`, exported so a test can EXPLAIN it. */
export function keysByHashesQuery(hashesHex: readonly string[]): SqlQuery {
  return {
    sql: `SELECT snapshot.seq, encode(k.key_hash, 'hex') AS hash, k.id, k.team_id, k.status, k.pools, k.countries, k.expires_at,
                 k.rate_limit_per_second, k.rate_limit_burst, k.max_concurrent_per_node, k.max_concurrent_per_region,
                 EXISTS (
                   SELECT 1 FROM usage_monthly u
                   WHERE u.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date AND u.exceeded_at IS NOT NULL
                     AND ((u.subject_type = 'key' AND u.subject_id = k.id) OR (u.subject_type = 'team' AND u.subject_id = k.team_id))
                 ) AS over_quota
          FROM (SELECT coalesce(max(seq), 0) AS seq FROM outbox) snapshot
          LEFT JOIN api_keys k ON k.key_hash = ANY (SELECT decode(wanted, 'hex') FROM unnest($1::text[]) AS wanted)`,
    params: [hashesHex],
  };
}

/**
 * The proxy node's lookup, for a batch of hashes (hex) at once: one index probe each. The
 * latest outbox seq is read in the same statement (one snapshot): a node can then tell
 * whether a revocation it has applied is newer than this answer, and must not cache it.
 * Unknown hashes are absent from the map.
 */
export async function findKeysByHashes(db: Queryable, hashesHex: readonly string[]): Promise<{ keys: Map<string, VerifiedKey>; seq: number }> {
  const query = keysByHashesQuery(hashesHex);
  const { rows } = await db.query<KeyRow & { seq: number; hash: string | null; over_quota: boolean }>(query.sql, query.params);
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
    });
  }
  return { keys, seq: rows[0]!.seq };
}

const nullableString = { type: ['string', 'null'] } as const;
const stringArray = { type: 'array', items: { type: 'string' } } as const;

/** The response shape of a key, compiled by fastify into a fast serializer. */
export const keyViewSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    teamId: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string' },
    status: { type: 'string' },
    pools: stringArray,
    countries: stringArray,
    expiresAt: nullableString,
    rateLimit: {
      type: ['object', 'null'],
      properties: { requestsPerSecond: { type: 'integer' }, burst: { type: 'integer' } },
    },
    concurrency: {
      type: ['object', 'null'],
      properties: { perNode: { type: ['integer', 'null'] }, perRegion: { type: ['integer', 'null'] } },
    },
    monthlyQuotaBytes: { type: ['integer', 'null'] },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    lastUsedAt: nullableString,
    revokedAt: nullableString,
  },
} as const;
