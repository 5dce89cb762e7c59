import type { ConcurrencyLimit, RateLimit } from '../../contract/node-api.js';
import { CURRENT_MONTH } from '../usage/store.js';

/** A key's row as every key query selects it, and how the admin API shows it. */

export type KeyStatus = 'active' | 'revoked' | 'expired';

export interface KeyRow {
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
  allowed_client_cidrs: string[];
  created_at: Date;
  updated_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  /** Bytes up and down this calendar month (UTC); null before the first. */
  month_bytes: number | null;
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
  monthlyUsedBytes: number;
  monthlyRemainingBytes: number | null;
  allowedClientCidrs: string[];
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export const KEY_COLUMNS = `id, team_id, name, prefix, status, pools, countries, expires_at, rate_limit_per_second,
  rate_limit_burst, max_concurrent_per_node, max_concurrent_per_region, monthly_quota_bytes, allowed_client_cidrs,
  created_at, updated_at, last_used_at, revoked_at, created_at::text AS position,
  (SELECT bytes FROM usage_monthly WHERE subject_type = 'key' AND subject_id = api_keys.id AND month = ${CURRENT_MONTH}) AS month_bytes`;

export function rateLimitOf(row: Pick<KeyRow, 'rate_limit_per_second' | 'rate_limit_burst'>): RateLimit | null {
  return row.rate_limit_per_second === null ? null : { requestsPerSecond: row.rate_limit_per_second, burst: row.rate_limit_burst ?? row.rate_limit_per_second };
}

export function concurrencyOf(row: Pick<KeyRow, 'max_concurrent_per_node' | 'max_concurrent_per_region'>): ConcurrencyLimit | null {
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
    monthlyUsedBytes: row.month_bytes ?? 0,
    monthlyRemainingBytes: row.monthly_quota_bytes === null ? null : Math.max(0, row.monthly_quota_bytes - (row.month_bytes ?? 0)),
    allowedClientCidrs: row.allowed_client_cidrs,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}

export const keyPosition = (row: KeyRow): string[] => [row.position, row.id];
