import { createHash } from 'node:crypto';
import type { Exit } from '../../contract/node-api.js';
import { countryName } from '../../geo/countries.js';
import type { Queryable } from '../db/database.js';

export interface PoolRow {
  name: string;
  exits: Exit[];
  created_at: Date;
  updated_at: Date;
}

/** Exit ids derive from what the exit is, so re-saving a pool keeps sticky sessions on it. */
export function exitId(pool: string, country: string, url: string): string {
  return `exit_${createHash('sha256').update(`${pool}\0${country}\0${url}`).digest('base64url').slice(0, 12)}`;
}

export async function listAllPools(db: Queryable): Promise<PoolRow[]> {
  const { rows } = await db.query<PoolRow>('SELECT name, exits, created_at, updated_at FROM pools ORDER BY name');
  return rows;
}

/** Healthy exits per pool and country: the lowest count any live node reports. */
export type ExitHealth = Map<string, number>;

export async function loadExitHealth(db: Queryable, nodeLivenessMs: number): Promise<ExitHealth> {
  const { rows } = await db.query<{ pool: string; country: string; healthy: number }>(
    `SELECT entry->>'pool' AS pool, entry->>'country' AS country, min((entry->>'healthy')::int) AS healthy
     FROM nodes, jsonb_array_elements(exit_health) AS entry
     WHERE last_seen_at > clock_timestamp() - make_interval(secs => $1 / 1000.0)
     GROUP BY 1, 2`,
    [nodeLivenessMs],
  );
  return new Map(rows.map((row) => [`${row.pool}\0${row.country}`, row.healthy]));
}

/**
 * What a pool looks like through the admin API. The platform admin sees its exits, with
 * credentials redacted; a team sees only the pool's name and countries, never where its
 * traffic goes out (exit URLs, upstream hosts).
 */
export function renderPool(row: PoolRow, { withExits, health = new Map() }: { withExits: boolean; health?: ExitHealth }) {
  const countries = new Map<string, { country: string; name: string; exits: number; healthy: number | null }>();
  for (const exit of row.exits) {
    const entry = countries.get(exit.country) ?? {
      country: exit.country,
      name: countryName(exit.country) ?? exit.country,
      exits: 0,
      healthy: health.get(`${row.name}\0${exit.country}`) ?? null,
    };
    entry.exits++;
    countries.set(exit.country, entry);
  }
  return {
    name: row.name,
    ...(withExits && { exits: row.exits.map((exit) => ({ ...exit, url: redactCredentials(exit.url) })) }),
    countries: [...countries.values()].sort((a, b) => a.country.localeCompare(b.country)),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function redactCredentials(url: string): string {
  if (url === 'direct') return url;
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString().replace(/\/$/, '');
}
