import type { FastifyInstance } from 'fastify';
import { fail } from '../errors.js';
import type { Database } from '../db/database.js';
import { usageSeries } from './store.js';
import { idSchema, teamParams, timestampSchema } from '../http/validation.js';
import { registerUsageExport } from './export.js';
import { RANGE_ERRORS, usageQuerySchema, usageRange, type UsageQuery } from './range.js';

export interface UsageRoutesOptions {
  db: Database;
  onExportPage(rows: number): void;
}

const count = { type: 'integer', minimum: 0 } as const;

const seriesSchema = {
  description: 'Buckets with traffic, oldest first (buckets without traffic are left out).',
  type: 'object',
  required: ['from', 'to', 'granularity', 'data'],
  properties: {
    from: timestampSchema,
    to: timestampSchema,
    granularity: { type: 'string', enum: ['hour', 'day'] },
    data: {
      type: 'array',
      items: {
        type: 'object',
        required: ['start', 'bytesUp', 'bytesDown', 'requests', 'tunnels'],
        properties: {
          start: timestampSchema,
          bytesUp: { ...count, description: 'client → target: request bodies, and every byte the client sent into its tunnels' },
          bytesDown: { ...count, description: 'target → client: response bodies, and every byte the target sent through tunnels' },
          requests: count,
          tunnels: count,
        },
      },
    },
  },
} as const;

/** `GET /v1/teams/{team}/usage`, `GET /v1/teams/{team}/keys/{id}/usage` and the CSV export. */
export function registerUsageRoutes(app: FastifyInstance, { db, onExportPage }: UsageRoutesOptions): void {
  app.get<{ Params: { team: string }; Querystring: UsageQuery }>(
    '/v1/teams/:team/usage',
    {
      config: { scope: 'usage:read', heavy: true, errors: [...RANGE_ERRORS] },
      schema: { tags: ['usage'], summary: "A team's traffic per hour or day", params: teamParams, querystring: usageQuerySchema, response: { 200: seriesSchema } },
    },
    async (request) => {
      const { team } = request.params;
      const { from, to } = usageRange(request.query);
      return { from: from.toISOString(), to: to.toISOString(), granularity: request.query.granularity, data: await usageSeries(db, { teamId: team }, from, to, request.query.granularity) };
    },
  );

  app.get<{ Params: { team: string; id: string }; Querystring: UsageQuery }>(
    '/v1/teams/:team/keys/:id/usage',
    {
      config: { scope: 'usage:read', heavy: true, errors: ['key_not_found', ...RANGE_ERRORS] },
      schema: {
        tags: ['usage'],
        summary: "A key's traffic per hour or day",
        params: { type: 'object', additionalProperties: false, required: ['team', 'id'], properties: { team: idSchema, id: idSchema } },
        querystring: usageQuerySchema,
        response: { 200: seriesSchema },
      },
    },
    async (request) => {
      const { team, id } = request.params;
      const key = await db.query('SELECT 1 FROM api_keys WHERE id = $1 AND team_id = $2', [id, team]);
      if (key.rowCount === 0) throw fail('key_not_found');
      const { from, to } = usageRange(request.query);
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        granularity: request.query.granularity,
        data: await usageSeries(db, { teamId: team, keyId: id }, from, to, request.query.granularity),
      };
    },
  );

  registerUsageExport(app, { db, onPage: onExportPage });
}
