import type { RateLimit } from '../../contract/node-api.js';
import { normalizeCountryCode } from '../../geo/countries.js';
import { formatCidr, parseCidr } from '../../lib/cidr.js';
import type { Queryable } from '../db/database.js';
import { fail } from '../errors.js';
import { parseExpiry } from '../http/validation.js';
import type { GrantsBody } from './schemas.js';
import type { KeyChanges, KeyGrants } from './store.js';

/** Checking a key's grants and limits as an admin sent them, against what exists. */

/** Which of `pools` exist, in one query however many keys name them. */
export async function existingPools(db: Queryable, pools: Iterable<string>): Promise<Set<string>> {
  const wanted = [...new Set(pools)];
  if (wanted.length === 0) return new Set();
  const { rows } = await db.query<{ name: string }>('SELECT name FROM pools WHERE name = ANY($1)', [wanted]);
  return new Set(rows.map((row) => row.name));
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

/** Canonical, without duplicates, in the order given. */
function normalizeClientCidrs(cidrs: string[]): string[] {
  const normalized: string[] = [];
  for (const text of cidrs) {
    const cidr = parseCidr(text.trim());
    if (cidr === undefined) throw fail('client_cidr_invalid', text);
    const canonical = formatCidr(cidr);
    if (!normalized.includes(canonical)) normalized.push(canonical);
  }
  return normalized;
}

function parseRateLimit(value: GrantsBody['rateLimit']): RateLimit | null | undefined {
  if (value === undefined || value === null) return value;
  // The burst is how many requests may arrive at once; by default one second's worth.
  return { requestsPerSecond: value.requestsPerSecond, burst: value.burst ?? value.requestsPerSecond };
}

/** Validates grants against the pools given as existing and the countries; returns only the fields given. */
export function parseGrantsAgainst(knownPools: ReadonlySet<string>, body: GrantsBody): KeyChanges {
  const changes: KeyChanges = {};
  if (body.pools !== undefined) {
    const unknown = body.pools.filter((pool) => !knownPools.has(pool));
    if (unknown.length > 0) throw fail('pool_unknown', unknown.join(', '));
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
  if (body.allowedClientCidrs !== undefined) changes.allowedClientCidrs = normalizeClientCidrs(body.allowedClientCidrs);
  return changes;
}

/** Validates grants against the pools and countries that exist; returns only the fields given. */
export async function parseGrants(db: Queryable, body: GrantsBody): Promise<KeyChanges> {
  return parseGrantsAgainst(await existingPools(db, body.pools ?? []), body);
}

/** A new key's grants: what was given, and no grant or limit for the rest. */
export function withDefaults(changes: KeyChanges): KeyGrants {
  return {
    pools: changes.pools ?? [],
    countries: changes.countries ?? [],
    expiresAt: changes.expiresAt ?? null,
    rateLimit: changes.rateLimit ?? null,
    concurrency: changes.concurrency ?? null,
    monthlyQuotaBytes: changes.monthlyQuotaBytes ?? null,
    allowedClientCidrs: changes.allowedClientCidrs ?? [],
  };
}
