import type { FastifyInstance } from 'fastify';
import { normalizeCountryCode } from '../../geo/countries.js';
import { ApiError } from '../errors.js';
import { auditContextOf } from '../activity/log.js';
import type { CursorCodec } from '../http/cursor.js';
import type { Database, Queryable } from '../db/database.js';
import {
  createKey,
  getKey,
  keyPosition,
  listKeys,
  renderKey,
  revokeKey,
  rotateKey,
  updateKey,
  keyViewSchema,
  type KeyChanges,
  type KeyStatus,
  type RateLimit,
} from './store.js';
import { pageQuerySchema, toPage } from '../http/pagination.js';
import type { TotalCache } from './total-cache.js';
import { assertTeamAccess } from '../http/team-access.js';
import { displayNameSchema, idSchema, poolNameSchema, PRINTABLE_TEXT } from '../http/validation.js';

export interface KeyRoutesOptions {
  db: Database;
  cursors: CursorCodec;
  totals: TotalCache;
}

const rateLimitSchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['requestsPerSecond'],
  properties: {
    requestsPerSecond: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    burst: { type: 'integer', minimum: 1, maximum: 10_000_000 },
  },
} as const;

const concurrencySchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  minProperties: 1,
  properties: {
    perNode: { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000 },
    perRegion: { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000 },
  },
} as const;

const grantProperties = {
  pools: { type: 'array', maxItems: 100, uniqueItems: true, items: poolNameSchema },
  countries: { type: 'array', maxItems: 300, uniqueItems: true, items: { type: 'string', minLength: 2, maxLength: 2 } },
  expiresAt: { type: ['string', 'null'], format: 'date-time' },
  rateLimit: rateLimitSchema,
  concurrency: concurrencySchema,
  monthlyQuotaBytes: { type: ['integer', 'null'], minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
} as const;

const teamParams = { type: 'object', additionalProperties: false, required: ['team'], properties: { team: idSchema } } as const;
const keyParams = {
  type: 'object',
  additionalProperties: false,
  required: ['team', 'id'],
  properties: { team: idSchema, id: idSchema },
} as const;

interface GrantsBody {
  pools?: string[];
  countries?: string[];
  expiresAt?: string | null;
  rateLimit?: { requestsPerSecond: number; burst?: number } | null;
  concurrency?: { perNode?: number | null; perRegion?: number | null } | null;
  monthlyQuotaBytes?: number | null;
}

interface CreateKeyBody extends GrantsBody {
  name: string;
}

interface ListQuery {
  limit: number;
  cursor?: string;
  status?: KeyStatus;
  q?: string;
}

async function checkPoolsExist(db: Queryable, pools: string[]): Promise<void> {
  if (pools.length === 0) return;
  const { rows } = await db.query<{ name: string }>('SELECT name FROM pools WHERE name = ANY($1)', [pools]);
  const known = new Set(rows.map((row) => row.name));
  const unknown = pools.filter((pool) => !known.has(pool));
  if (unknown.length > 0) throw new ApiError(422, 'pool_unknown', `unknown pool${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
}

function normalizeCountries(countries: string[]): string[] {
  const normalized: string[] = [];
  for (const country of countries) {
    const code = normalizeCountryCode(country);
    if (code === undefined) throw new ApiError(422, 'country_unknown', `"${country}" is not an ISO 3166-1 alpha-2 country code`);
    if (!normalized.includes(code)) normalized.push(code);
  }
  return normalized.sort();
}

function parseExpiry(value: string | null | undefined): Date | null | undefined {
  if (value === undefined || value === null) return value;
  const expiresAt = new Date(value);
  if (expiresAt.getTime() <= Date.now()) throw new ApiError(422, 'expires_at_in_past', 'expiresAt must be in the future');
  return expiresAt;
}

function parseRateLimit(value: GrantsBody['rateLimit']): RateLimit | null | undefined {
  if (value === undefined || value === null) return value;
  // The burst is how many requests may arrive at once; by default one second's worth.
  return { requestsPerSecond: value.requestsPerSecond, burst: value.burst ?? value.requestsPerSecond };
}

/** Validates grants against the pools and countries that exist; returns only the fields given. */
async function parseGrants(db: Queryable, body: GrantsBody): Promise<KeyChanges> {
  const changes: KeyChanges = {};
  if (body.pools !== undefined) {
    await checkPoolsExist(db, body.pools);
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
  return changes;
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

  app.get<{ Params: { team: string }; Querystring: ListQuery }>(
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
