import type { FastifyInstance } from 'fastify';
import { fail } from '../errors.js';
import type { Database } from '../db/database.js';
import { assertTeamAccess } from '../http/team-access.js';
import { usageSeries } from './store.js';
import { idSchema } from '../http/validation.js';

export interface UsageRoutesOptions {
  db: Database;
}

/** The longest range a series may cover, so an answer stays small without pages. */
const MAX_BUCKETS = { hour: 24 * 31, day: 366 } as const;
const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;

interface UsageQuery {
  from?: string;
  to?: string;
  granularity: 'hour' | 'day';
}

const querySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    granularity: { type: 'string', enum: ['hour', 'day'], default: 'hour' },
  },
} as const;

function range({ from, to, granularity }: UsageQuery): { from: Date; to: Date } {
  const end = to === undefined ? new Date() : new Date(to);
  const start = from === undefined ? new Date(end.getTime() - 24 * BUCKET_MS[granularity]) : new Date(from);
  if (start.getTime() >= end.getTime()) throw fail('range_invalid');
  if ((end.getTime() - start.getTime()) / BUCKET_MS[granularity] > MAX_BUCKETS[granularity]) {
    throw fail('range_too_long', MAX_BUCKETS[granularity], granularity);
  }
  return { from: start, to: end };
}

/** `GET /v1/teams/{team}/usage` and `GET /v1/teams/{team}/keys/{id}/usage`. */
export function registerUsageRoutes(app: FastifyInstance, { db }: UsageRoutesOptions): void {
  app.get<{ Params: { team: string }; Querystring: UsageQuery }>(
    '/v1/teams/:team/usage',
    { schema: { params: { type: 'object', additionalProperties: false, required: ['team'], properties: { team: idSchema } }, querystring: querySchema } },
    async (request) => {
      const { team } = request.params;
      await assertTeamAccess(db, request, team);
      const { from, to } = range(request.query);
      return { from: from.toISOString(), to: to.toISOString(), granularity: request.query.granularity, data: await usageSeries(db, { teamId: team }, from, to, request.query.granularity) };
    },
  );

  app.get<{ Params: { team: string; id: string }; Querystring: UsageQuery }>(
    '/v1/teams/:team/keys/:id/usage',
    {
      schema: {
        params: { type: 'object', additionalProperties: false, required: ['team', 'id'], properties: { team: idSchema, id: idSchema } },
        querystring: querySchema,
      },
    },
    async (request) => {
      const { team, id } = request.params;
      await assertTeamAccess(db, request, team);
      const key = await db.query('SELECT 1 FROM api_keys WHERE id = $1 AND team_id = $2', [id, team]);
      if (key.rowCount === 0) throw fail('key_not_found');
      const { from, to } = range(request.query);
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        granularity: request.query.granularity,
        data: await usageSeries(db, { teamId: team, keyId: id }, from, to, request.query.granularity),
      };
    },
  );
}
