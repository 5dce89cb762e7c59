import { createHash } from 'node:crypto';
import type { Queryable } from './db/database.js';

export interface PoolExit {
  id: string;
  country: string;
  /** `direct`, or an upstream exit proxy `http://[user:password@]host:port`. */
  url: string;
}

export interface PoolRow {
  name: string;
  exits: PoolExit[];
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

/** What a pool looks like through the admin API: exit credentials are never shown. */
export function renderPool(row: PoolRow) {
  return {
    name: row.name,
    exits: row.exits.map((exit) => ({ id: exit.id, country: exit.country, url: redactCredentials(exit.url) })),
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
