import type { FastifyInstance } from 'fastify';
import { auditContextOf } from '../activity/log.js';
import type { Database } from '../db/database.js';
import type { CursorCodec } from '../http/cursor.js';
import { pageQuerySchema, pageSchema, toPage } from '../http/pagination.js';
import { displayNameSchema, teamParams } from '../http/validation.js';
import { registerBulkKeyRoute } from './bulk.js';
import { registerKeyExport } from './export.js';
import { parseGrants, withDefaults } from './grants.js';
import { listKeys } from './list.js';
import { keyPosition, renderKey } from './rows.js';
import { createKeyBodySchema, grantProperties, keyFilterProperties, keyParams, keyViewSchema, keyWithSecretSchema, type CreateKeyBody, type GrantsBody, type KeyListQuery } from './schemas.js';
import { createKey, getKey, revokeKey, rotateKey, updateKey } from './store.js';
import type { TotalCache } from './total-cache.js';

export interface KeyRoutesOptions {
  db: Database;
  cursors: CursorCodec;
  totals: TotalCache;
  bodyLimitBytes: number;
  onExportPage(rows: number): void;
}

const GRANT_ERRORS = ['pool_unknown', 'country_unknown', 'expires_at_in_past', 'client_cidr_invalid'] as const;

export function registerKeyRoutes(app: FastifyInstance, { db, cursors, totals, bodyLimitBytes, onExportPage }: KeyRoutesOptions): void {
  // Every change to a team's keys makes its cached list totals stale.
  app.addHook('onResponse', async (request, reply) => {
    const team = (request.params as { team?: string } | undefined)?.team;
    if (request.method !== 'GET' && reply.statusCode < 300 && team !== undefined) totals.invalidate(team);
  });

  app.post<{ Params: { team: string }; Body: CreateKeyBody }>(
    '/v1/teams/:team/keys',
    {
      config: { scope: 'keys:write', errors: [...GRANT_ERRORS, 'key_name_taken'] },
      schema: {
        tags: ['keys'],
        summary: 'Create a key',
        description: 'Grants left out allow everything (every pool, every country); limits left out do not limit.',
        params: teamParams,
        body: createKeyBodySchema,
        response: { 201: keyWithSecretSchema },
      },
    },
    async (request, reply) => {
      const { team } = request.params;
      const grants = withDefaults(await parseGrants(db, request.body));
      const created = await db.transaction((tx) => createKey(tx, auditContextOf(request), team, request.body.name, grants));
      return reply.status(201).send({ ...created.view, key: created.secret });
    },
  );

  app.get<{ Params: { team: string }; Querystring: KeyListQuery }>(
    '/v1/teams/:team/keys',
    {
      config: { scope: 'keys:read', heavy: true },
      schema: {
        tags: ['keys'],
        summary: "List a team's keys",
        description: 'Newest first, in keyset pages stable under concurrent inserts. The first page carries `total`, exact up to 10,000, then 10,000 with `totalCapped: true`.',
        params: teamParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...pageQuerySchema, ...keyFilterProperties },
        },
        response: {
          200: {
            ...pageSchema(keyViewSchema, 'A page of keys.'),
            properties: {
              ...pageSchema(keyViewSchema, '').properties,
              total: { type: 'integer', description: 'first page only' },
              totalCapped: { type: 'boolean', description: 'first page only' },
            },
          },
        },
      },
    },
    async (request) => {
      const { team } = request.params;
      const { limit, cursor, status, q } = request.query;
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

  registerBulkKeyRoute(app, { db, bodyLimitBytes });
  registerKeyExport(app, { db, onPage: onExportPage });

  app.get<{ Params: { team: string; id: string } }>(
    '/v1/teams/:team/keys/:id',
    {
      config: { scope: 'keys:read', errors: ['key_not_found'] },
      schema: { tags: ['keys'], summary: 'Read a key', params: keyParams, response: { 200: keyViewSchema } },
    },
    async (request) => getKey(db, request.params.team, request.params.id),
  );

  app.patch<{ Params: { team: string; id: string }; Body: GrantsBody & { name?: string } }>(
    '/v1/teams/:team/keys/:id',
    {
      config: { scope: 'keys:write', errors: ['key_not_found', 'key_revoked', 'key_name_taken', ...GRANT_ERRORS] },
      schema: {
        tags: ['keys'],
        summary: "Change a key's name, grants or limits",
        description: 'Fields left out stay as they are; null removes a limit or the expiry. Narrowed grants bite on every node at once.',
        params: keyParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { name: displayNameSchema, ...grantProperties } },
        response: { 200: keyViewSchema },
      },
    },
    async (request) => {
      const { team, id } = request.params;
      const changes = await parseGrants(db, request.body);
      if (request.body.name !== undefined) changes.name = request.body.name;
      return db.transaction((tx) => updateKey(tx, auditContextOf(request), team, id, changes));
    },
  );

  app.post<{ Params: { team: string; id: string } }>(
    '/v1/teams/:team/keys/:id/revoke',
    {
      config: { scope: 'keys:write', errors: ['key_not_found'] },
      schema: {
        tags: ['keys'],
        summary: 'Revoke a key',
        description: 'Every node refuses the key and closes its open connections; `revocation` is where to watch that happen. Revoking a revoked key changes nothing.',
        params: keyParams,
        response: {
          200: {
            ...keyViewSchema,
            required: [...keyViewSchema.required, 'revocation'],
            properties: { ...keyViewSchema.properties, revocation: { type: 'string', description: 'the path of the revocation status' } },
          },
        },
      },
    },
    async (request) => {
      const { team, id } = request.params;
      const result = await db.transaction((tx) => revokeKey(tx, auditContextOf(request), team, id));
      return { ...result.view, revocation: `/v1/teams/${team}/keys/${id}/revocation` };
    },
  );

  app.post<{ Params: { team: string; id: string } }>(
    '/v1/teams/:team/keys/:id/rotate',
    {
      config: { scope: 'keys:write', errors: ['key_not_found', 'key_revoked'] },
      schema: {
        tags: ['keys'],
        summary: "Replace a key's secret",
        description: 'The old secret stops working everywhere, like a revocation; the new one is in this answer only.',
        params: keyParams,
        response: { 200: keyWithSecretSchema },
      },
    },
    async (request) => {
      const { team, id } = request.params;
      const rotated = await db.transaction((tx) => rotateKey(tx, auditContextOf(request), team, id));
      return { ...rotated.view, key: rotated.secret };
    },
  );
}
