import { apiKeyDisplayPrefix, API_KEY_PREFIX } from '../../lib/secret-format.js';
import type { Queryable } from '../db/database.js';
import { KEY_COLUMNS, type KeyRow, type KeyStatus } from './rows.js';
import type { Total, TotalCache } from './total-cache.js';

/** Above this many matches a list reports "10,000+" instead of counting further. */
export const TOTAL_CAP = 10_000;

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
