import type { ConcurrencyLimit, RateLimit } from '../../contract/node-api.js';
import { sha256 } from '../../lib/hash.js';
import { apiKeyDisplayPrefix, generateApiKey, generateId } from '../../lib/secret-format.js';
import { recordActivity, type AuditContext } from '../activity/log.js';
import type { Queryable } from '../db/database.js';
import { fail } from '../errors.js';
import { appendOutbox } from '../revocation/outbox.js';
import { reconcileQuota } from '../usage/store.js';
import { KEY_COLUMNS, renderKey, type KeyRow, type KeyView } from './rows.js';

/**
 * Changes to keys, each in the caller's transaction with its activity entry and, where
 * nodes must hear of it, its outbox event.
 */

export interface KeyGrants {
  pools: string[];
  countries: string[];
  expiresAt: Date | null;
  rateLimit: RateLimit | null;
  concurrency: ConcurrencyLimit | null;
  monthlyQuotaBytes: number | null;
  allowedClientCidrs: string[];
}

/**
 * A unique violation (SQLSTATE 23505) on a key write is the active-name index: the only
 * other unique column is the hash of 190 random bits.
 */
function isNameTaken(error: unknown): boolean {
  return (error as { code?: unknown }).code === '23505';
}

const nameTaken = (name: string) => fail('key_name_taken', name);

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
         max_concurrent_per_node, max_concurrent_per_region, monthly_quota_bytes, allowed_client_cidrs)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING ${KEY_COLUMNS}`,
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
        grants.allowedClientCidrs,
      ],
    );
    row = result.rows[0]!;
  } catch (error) {
    if (isNameTaken(error)) throw nameTaken(name);
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
  if (row === undefined) throw fail('key_not_found');
  return renderKey(row);
}

async function lockKey(tx: Queryable, teamId: string, keyId: string): Promise<KeyRow & { key_hash: Buffer }> {
  const { rows } = await tx.query<KeyRow & { key_hash: Uint8Array }>(
    `SELECT ${KEY_COLUMNS}, key_hash FROM api_keys WHERE id = $1 AND team_id = $2 FOR UPDATE`,
    [keyId, teamId],
  );
  const row = rows[0];
  if (row === undefined) throw fail('key_not_found');
  return { ...row, key_hash: Buffer.from(row.key_hash) };
}

const revokedConflict = () => fail('key_revoked');

export interface KeyChanges {
  name?: string;
  pools?: string[];
  countries?: string[];
  expiresAt?: Date | null;
  rateLimit?: RateLimit | null;
  concurrency?: ConcurrencyLimit | null;
  monthlyQuotaBytes?: number | null;
  allowedClientCidrs?: string[];
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
         monthly_quota_bytes = $11, allowed_client_cidrs = $12, updated_at = clock_timestamp()
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
        changes.allowedClientCidrs ?? before.allowed_client_cidrs,
      ],
    );
    row = result.rows[0]!;
  } catch (error) {
    if (isNameTaken(error)) throw nameTaken(changes.name ?? before.name);
    throw error;
  }
  const after = renderKey(row);
  const changed: Record<string, { from: unknown; to: unknown }> = {};
  for (const field of ['name', 'pools', 'countries', 'expiresAt', 'rateLimit', 'concurrency', 'monthlyQuotaBytes', 'allowedClientCidrs'] as const) {
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
  await appendOutbox(tx, { kind: 'key.revoked', teamId, keyId, keyHash: before.key_hash, traceparent: audit.traceparent });
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
  await appendOutbox(tx, { kind: 'key.rotated', teamId, keyId, keyHash: before.key_hash, traceparent: audit.traceparent });
  return { view: renderKey(row), secret };
}
