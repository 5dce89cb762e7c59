import type { RateLimit } from '../../contract/node-api.js';
import { normalizeCountryCode } from '../../geo/countries.js';
import type { Queryable } from '../db/database.js';
import { fail } from '../errors.js';
import type { GrantsBody } from './schemas.js';
import type { KeyChanges } from './store.js';

/** Checking a key's grants and limits as an admin sent them, against what exists. */

async function checkPoolsExist(db: Queryable, pools: string[]): Promise<void> {
  if (pools.length === 0) return;
  const { rows } = await db.query<{ name: string }>('SELECT name FROM pools WHERE name = ANY($1)', [pools]);
  const known = new Set(rows.map((row) => row.name));
  const unknown = pools.filter((pool) => !known.has(pool));
  if (unknown.length > 0) throw fail('pool_unknown', unknown.join(', '));
}

function normalizeCountries(countries: string[]): string[] {
  const normalized: string[] = [];
  for (const country of countries) {
    const code = normalizeCountryCode(country);
    if (code === undefined) throw fail('country_unknown', country);
    if (!normalized.includes(code)) normalized.push(code);
  }
  return normalized.sort();
}

function parseExpiry(value: string | null | undefined): Date | null | undefined {
  if (value === undefined || value === null) return value;
  const expiresAt = new Date(value);
  if (expiresAt.getTime() <= Date.now()) throw fail('expires_at_in_past');
  return expiresAt;
}

function parseRateLimit(value: GrantsBody['rateLimit']): RateLimit | null | undefined {
  if (value === undefined || value === null) return value;
  // The burst is how many requests may arrive at once; by default one second's worth.
  return { requestsPerSecond: value.requestsPerSecond, burst: value.burst ?? value.requestsPerSecond };
}

/** Validates grants against the pools and countries that exist; returns only the fields given. */
export async function parseGrants(db: Queryable, body: GrantsBody): Promise<KeyChanges> {
  const changes: KeyChanges = {};
  if (body.pools !== undefined) {
    await checkPoolsExist(db, body.pools);
    changes.pools = [...body.pools].sort();
  }
  if (body.countries !== undefined) changes.countries = normalizeCountries(body.countries);
  const expiresAt = parseExpiry(body.expiresAt);
  if (expiresAt !== undefined) changes.expiresAt = expiresAt;
  const rateLimit = parseRateLimit(body.rateLimit);
  if (rateLimit !== undefined) changes.rateLimit = rateLimit;
  if (body.concurrency !== undefined) {
    changes.concurrency = body.concurrency === null ? null : { perNode: body.concurrency.perNode ?? null, perRegion: body.concurrency.perRegion ?? null };
  }
  if (body.monthlyQuotaBytes !== undefined) changes.monthlyQuotaBytes = body.monthlyQuotaBytes;
  return changes;
}
