import type { FastifyInstance } from 'fastify';
import { auditContextOf } from '../activity/log.js';
import type { Database } from '../db/database.js';
import type { CursorCodec } from '../http/cursor.js';
import { pageQuerySchema, toPage } from '../http/pagination.js';
import { assertTeamAccess } from '../http/team-access.js';
import { displayNameSchema, PRINTABLE_TEXT } from '../http/validation.js';
import { parseGrants } from './grants.js';
import { listKeys } from './list.js';
import { keyPosition, renderKey } from './rows.js';
import { grantProperties, keyParams, keyViewSchema, teamParams, type CreateKeyBody, type GrantsBody, type KeyListQuery } from './schemas.js';
import { createKey, getKey, revokeKey, rotateKey, updateKey } from './store.js';
import type { TotalCache } from './total-cache.js';

export interface KeyRoutesOptions {
  db: Database;
  cursors: CursorCodec;
  totals: TotalCache;
}

export function registerKeyRoutes(app: FastifyInstance, { db, cursors, totals }: KeyRoutesOptions): void {
  // Every change to a team's keys makes its cached list totals stale.
  app.addHook('onResponse', async (request, reply) => {
    const team = (request.params as { team?: string } | undefined)?.team;
    if (request.method !== 'GET' && reply.statusCode < 300 && team !== undefined) totals.invalidate(team);
  });

  app.post<{ Params: { team: string }; Body: CreateKeyBody }>(
    '/v1/teams/:team/keys',
    {
      schema: {
        params: teamParams,
        body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: displayNameSchema, ...grantProperties } },
      },
    },
    async (request, reply) => {
      const { team } = request.params;
      await assertTeamAccess(db, request, team);
      const grants = await parseGrants(db, request.body);
      const created = await db.transaction((tx) =>
        createKey(tx, auditContextOf(request), team, request.body.name, {
          pools: grants.pools ?? [],
          countries: grants.countries ?? [],
          expiresAt: grants.expiresAt ?? null,
          rateLimit: grants.rateLimit ?? null,
          concurrency: grants.concurrency ?? null,
          monthlyQuotaBytes: grants.monthlyQuotaBytes ?? null,
        }),
      );
      return reply.status(201).send({ ...created.view, key: created.secret });
    },
  );

  app.get<{ Params: { team: string }; Querystring: KeyListQuery }>(
    '/v1/teams/:team/keys',
    {
      schema: {
        params: teamParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuerySchema,
            status: { type: 'string', enum: ['active', 'revoked', 'expired'] },
            q: { type: 'string', maxLength: 200, pattern: PRINTABLE_TEXT },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              data: { type: 'array', items: keyViewSchema },
              nextCursor: { type: ['string', 'null'] },
              total: { type: 'integer' },
              totalCapped: { type: 'boolean' },
            },
          },
        },
      },
    },
    async (request) => {
      const { team } = request.params;
      const { limit, cursor, status, q } = request.query;
      await assertTeamAccess(db, request, team);
      const scope = `keys:${team}:${status ?? ''}:${q ?? ''}`;
      const after = cursor === undefined ? undefined : cursors.decode(scope, cursor, 2);
      const filter = { ...(status !== undefined && { status }), ...(q !== undefined && { q }) };
      const page = await listKeys(db, team, filter, limit, after, totals);
      const now = Date.now();
      return {
        ...toPage(page.rows, limit, cursors, scope, keyPosition, (row) => renderKey(row, now)),
        ...(page.total !== undefined && { total: page.total.count, totalCapped: page.total.capped }),
      };
    },
  );

  app.get<{ Params: { team: string; id: string } }>('/v1/teams/:team/keys/:id', { schema: { params: keyParams } }, async (request) => {
    const { team, id } = request.params;
    await assertTeamAccess(db, request, team);
    return getKey(db, team, id);
  });

  app.patch<{ Params: { team: string; id: string }; Body: GrantsBody & { name?: string } }>(
    '/v1/teams/:team/keys/:id',
    {
      schema: {
        params: keyParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { name: displayNameSchema, ...grantProperties } },
      },
    },
    async (request) => {
      const { team, id } = request.params;
      await assertTeamAccess(db, request, team);
      const changes = await parseGrants(db, request.body);
      if (request.body.name !== undefined) changes.name = request.body.name;
      return db.transaction((tx) => updateKey(tx, auditContextOf(request), team, id, changes));
    },
  );

  app.post<{ Params: { team: string; id: string } }>('/v1/teams/:team/keys/:id/revoke', { schema: { params: keyParams } }, async (request) => {
    const { team, id } = request.params;
    await assertTeamAccess(db, request, team);
    const result = await db.transaction((tx) => revokeKey(tx, auditContextOf(request), team, id));
    return { ...result.view, revocation: `/v1/teams/${team}/keys/${id}/revocation` };
  });

  app.post<{ Params: { team: string; id: string } }>('/v1/teams/:team/keys/:id/rotate', { schema: { params: keyParams } }, async (request) => {
    const { team, id } = request.params;
    await assertTeamAccess(db, request, team);
    const rotated = await db.transaction((tx) => rotateKey(tx, auditContextOf(request), team, id));
    return { ...rotated.view, key: rotated.secret };
  });
}
