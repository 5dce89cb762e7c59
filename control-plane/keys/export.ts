import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/database.js';
import { csvResponse, csvStream, sendCsv, type Cell } from '../http/csv.js';
import { teamParams } from '../http/validation.js';
import { keyListQueries, type KeyListFilter } from './list.js';
import { keyPosition, renderKey, type KeyRow } from './rows.js';
import { keyFilterProperties } from './schemas.js';

export interface KeyExportOptions {
  db: Database;
  onPage(rows: number): void;
}

/** Keys fetched per page of an export. */
export const KEY_EXPORT_PAGE = 1_000;

const HEADER = [
  'id',
  'name',
  'prefix',
  'status',
  'pools',
  'countries',
  'expires_at',
  'requests_per_second',
  'burst',
  'concurrency_per_node',
  'concurrency_per_region',
  'monthly_quota_bytes',
  'monthly_used_bytes',
  'allowed_client_cidrs',
  'created_at',
  'updated_at',
  'last_used_at',
  'revoked_at',
] as const;

function keyCells(row: KeyRow, now: number): Cell[] {
  const key = renderKey(row, now);
  return [
    key.id,
    key.name,
    key.prefix,
    key.status,
    key.pools.join(' '),
    key.countries.join(' '),
    key.expiresAt,
    key.rateLimit?.requestsPerSecond ?? null,
    key.rateLimit?.burst ?? null,
    key.concurrency?.perNode ?? null,
    key.concurrency?.perRegion ?? null,
    key.monthlyQuotaBytes,
    key.monthlyUsedBytes,
    key.allowedClientCidrs.join(' '),
    key.createdAt,
    key.updatedAt,
    key.lastUsedAt,
    key.revokedAt,
  ];
}

/** `GET /v1/teams/{team}/keys.csv`: every key of a team (or those matching a filter), newest first. */
export function registerKeyExport(app: FastifyInstance, { db, onPage }: KeyExportOptions): void {
  app.get<{ Params: { team: string }; Querystring: KeyListFilter }>(
    '/v1/teams/:team/keys.csv',
    {
      config: { scope: 'keys:read', heavy: true },
      schema: {
        tags: ['keys'],
        summary: "Export a team's keys as CSV",
        description: `Newest first, with the filters of the key list. Streamed: the server reads ${KEY_EXPORT_PAGE.toLocaleString('en-US')} keys at a time as the client takes them, so any number of keys can be exported. Lists are space-separated; a text cell starting with =, +, - or @ gets a leading ' so that spreadsheets do not run it.`,
        params: teamParams,
        querystring: { type: 'object', additionalProperties: false, properties: keyFilterProperties },
        response: csvResponse(`Header: ${HEADER.join(',')}`),
      },
    },
    async (request, reply) => {
      const { team } = request.params;
      const filter = request.query;
      const stream = await csvStream({
        header: HEADER,
        onPage,
        async page(after) {
          const { page } = keyListQueries(team, filter, KEY_EXPORT_PAGE, after);
          const { rows } = await db.query<KeyRow>(page.sql, page.params);
          const hasMore = rows.length > KEY_EXPORT_PAGE;
          const visible = hasMore ? rows.slice(0, KEY_EXPORT_PAGE) : rows;
          const now = Date.now();
          return { rows: visible.map((row) => keyCells(row, now)), after: hasMore ? keyPosition(visible[visible.length - 1]!) : undefined };
        },
      });
      return sendCsv(reply, `keys-${team}.csv`, stream);
    },
  );
}
