import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/database.js';
import { csvResponse, csvStream, sendCsv, type Cell } from '../http/csv.js';
import { teamParams } from '../http/validation.js';
import { BUCKET_MS, RANGE_ERRORS, usageQuerySchema, usageRange, type UsageQuery } from './range.js';

export interface UsageExportOptions {
  db: Database;
  onPage(rows: number): void;
}

/** About this many CSV rows per page: keys per page times the buckets each can have. */
const ROWS_PER_PAGE = 5_000;

const HEADER = ['key_id', 'key_name', 'key_prefix', 'start', 'bytes_up', 'bytes_down', 'requests', 'tunnels'] as const;

interface UsageRow {
  id: string;
  name: string;
  prefix: string;
  position: string;
  bucket: Date | null;
  bytes_in: number | null;
  bytes_out: number | null;
  requests: number | null;
  tunnels: number | null;
}

/**
 * One page: the team's next keys (newest first, on the key list's index), each with its
 * usage in the range from its own primary-key range. A key with no traffic still moves
 * the cursor but writes no row.
 */
function pageQuery(keyset: boolean): string {
  return `WITH page AS (
      SELECT id, name, prefix, created_at, created_at::text AS position FROM api_keys
      WHERE team_id = $1 ${keyset ? 'AND (created_at, id) < ($6::timestamptz, $7)' : ''}
      ORDER BY created_at DESC, id DESC LIMIT $5)
    SELECT page.id, page.name, page.prefix, page.position, usage.bucket, usage.bytes_in, usage.bytes_out, usage.requests, usage.tunnels
    FROM page LEFT JOIN LATERAL (
      SELECT date_trunc($2, hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
             sum(bytes_in)::bigint AS bytes_in, sum(bytes_out)::bigint AS bytes_out, sum(requests)::bigint AS requests, sum(tunnels)::bigint AS tunnels
      FROM usage_hourly WHERE key_id = page.id AND hour >= $3 AND hour < $4 GROUP BY 1) usage ON true
    ORDER BY page.created_at DESC, page.id DESC, usage.bucket`;
}

/** `GET /v1/teams/{team}/usage.csv`: traffic per key and hour or day over a range. */
export function registerUsageExport(app: FastifyInstance, { db, onPage }: UsageExportOptions): void {
  app.get<{ Params: { team: string }; Querystring: UsageQuery }>(
    '/v1/teams/:team/usage.csv',
    {
      config: { scope: 'usage:read', heavy: true, errors: [...RANGE_ERRORS] },
      schema: {
        tags: ['usage'],
        summary: "Export a team's usage per key as CSV",
        description:
          'One row per key and hour (or day) with traffic, keys newest first and their buckets oldest first. Streamed a page of keys at a time as the client takes it. bytes_up is client → target, bytes_down is target → client.',
        params: teamParams,
        querystring: usageQuerySchema,
        response: csvResponse(`Header: ${HEADER.join(',')}`),
      },
    },
    async (request, reply) => {
      const { team } = request.params;
      const { granularity } = request.query;
      const { from, to } = usageRange(request.query);
      const buckets = Math.ceil((to.getTime() - from.getTime()) / BUCKET_MS[granularity]) + 1;
      const keysPerPage = Math.max(1, Math.floor(ROWS_PER_PAGE / buckets));
      const stream = await csvStream({
        header: HEADER,
        onPage,
        async page(after) {
          const params: unknown[] = [team, granularity, from, to, keysPerPage];
          if (after !== undefined) params.push(after[0], after[1]);
          const { rows } = await db.query<UsageRow>(pageQuery(after !== undefined), params);
          const cells: Cell[][] = [];
          let keys = 0;
          let last: UsageRow | undefined;
          for (const row of rows) {
            if (row.id !== last?.id) keys++;
            last = row;
            if (row.bucket === null) continue;
            cells.push([row.id, row.name, row.prefix, row.bucket.toISOString(), row.bytes_in, row.bytes_out, row.requests, row.tunnels]);
          }
          return { rows: cells, after: keys === keysPerPage && last !== undefined ? [last.position, last.id] : undefined };
        },
      });
      return sendCsv(reply, `usage-${team}.csv`, stream);
    },
  );
}
