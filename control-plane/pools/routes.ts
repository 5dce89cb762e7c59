import type { FastifyInstance, FastifyRequest } from 'fastify';
import { normalizeCountryCode } from '../../geo/countries.js';
import { fail } from '../errors.js';
import { auditContextOf, recordActivity } from '../activity/log.js';
import { principalOf } from '../http/auth.js';
import type { CursorCodec } from '../http/cursor.js';
import type { Database } from '../db/database.js';
import { pageQuery, pageSchema, toPage } from '../http/pagination.js';
import { POOLS_CHANGED } from '../../contract/feed.js';
import { CITY_PATTERN, MAX_ASN, STATE_PATTERN, type Exit } from '../../contract/node-api.js';
import { appendOutbox, type OutboxEvent } from '../revocation/outbox.js';
import { exitId, loadExitHealth, renderPool, type PoolRow } from './store.js';
import { poolNameSchema, timestampSchema } from '../http/validation.js';

export interface PoolRoutesOptions {
  db: Database;
  cursors: CursorCodec;
  nodeLivenessMs: number;
}

const exitsSchema = {
  type: 'array',
  maxItems: 1000,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['country', 'url'],
    properties: {
      country: { type: 'string', minLength: 2, maxLength: 2 },
      url: { type: 'string', minLength: 1, maxLength: 2048 },
      city: { type: 'string', pattern: CITY_PATTERN },
      state: { type: 'string', pattern: STATE_PATTERN },
      asn: { type: 'integer', minimum: 1, maximum: MAX_ASN },
    },
  },
} as const;

type ExitBody = Omit<Exit, 'id'>;

const poolParams = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: poolNameSchema } } as const;

const poolSchema = {
  type: 'object',
  required: ['name', 'countries', 'createdAt', 'updatedAt'],
  properties: {
    name: { type: 'string' },
    exits: {
      description: 'platform admin only; credentials in URLs are shown as ***',
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'country', 'url'],
        properties: {
          id: { type: 'string' },
          country: { type: 'string' },
          url: { type: 'string', description: '`direct`, or the upstream exit proxy' },
          city: { type: 'string' },
          state: { type: 'string' },
          asn: { type: 'integer' },
        },
      },
    },
    countries: {
      type: 'array',
      items: {
        type: 'object',
        required: ['country', 'name', 'exits', 'healthy'],
        properties: {
          country: { type: 'string' },
          name: { type: 'string' },
          exits: { type: 'integer' },
          healthy: { type: ['integer', 'null'], description: 'healthy exits as the live nodes see them (the lowest count any reports); null when no node reports' },
        },
      },
    },
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  },
} as const;

const seesExits = (request: FastifyRequest) => principalOf(request).kind === 'admin';

function normalizeExitUrl(value: string): string {
  if (value === 'direct') return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fail('exit_url_invalid', value);
  }
  if (url.protocol !== 'http:' || url.port === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw fail('exit_url_invalid', value);
  }
  return url.toString().replace(/\/$/, '');
}

function normalizeExits(pool: string, exits: ExitBody[]): Exit[] {
  const seen = new Set<string>();
  return exits.map(({ country, url, city, state, asn }) => {
    const code = normalizeCountryCode(country);
    if (code === undefined) throw fail('country_unknown', country);
    const normalizedUrl = normalizeExitUrl(url);
    const id = exitId(pool, code, normalizedUrl);
    if (seen.has(id)) throw fail('exit_duplicate', code, url);
    seen.add(id);
    return { id, country: code, url: normalizedUrl, ...(city !== undefined && { city }), ...(state !== undefined && { state }), ...(asn !== undefined && { asn }) };
  });
}

const COLUMNS = 'name, exits, created_at, updated_at';
/** Nodes hear of a pool change through the feed, within a second, and fetch every pool again. */
const POOLS_CHANGED_EVENT: OutboxEvent = { kind: POOLS_CHANGED, teamId: null, keyId: null, keyHash: null };

export function registerPoolRoutes(app: FastifyInstance, { db, cursors, nodeLivenessMs }: PoolRoutesOptions): void {
  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/pools',
    {
      config: { heavy: true },
      schema: {
        tags: ['pools'],
        summary: 'List pools',
        description: 'By name. A team token sees each pool\'s name and countries; only the platform admin sees its exits.',
        querystring: pageQuery,
        response: { 200: pageSchema(poolSchema, 'A page of pools.') },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const after = cursor === undefined ? undefined : cursors.decode('pools', cursor, 1);
      const [{ rows }, health] = await Promise.all([
        db.query<PoolRow>(`SELECT ${COLUMNS} FROM pools WHERE ($2::text IS NULL OR name > $2) ORDER BY name LIMIT $1`, [limit + 1, after?.[0] ?? null]),
        loadExitHealth(db, nodeLivenessMs),
      ]);
      const withExits = seesExits(request);
      return toPage(rows, limit, cursors, 'pools', (row) => [row.name], (row) => renderPool(row, { withExits, health }));
    },
  );

  app.get<{ Params: { name: string } }>(
    '/v1/pools/:name',
    {
      config: { errors: ['pool_not_found'] },
      schema: { tags: ['pools'], summary: 'Read a pool', params: poolParams, response: { 200: poolSchema } },
    },
    async (request) => {
      const { rows } = await db.query<PoolRow>(`SELECT ${COLUMNS} FROM pools WHERE name = $1`, [request.params.name]);
      if (rows[0] === undefined) throw fail('pool_not_found');
      return renderPool(rows[0], { withExits: seesExits(request), health: await loadExitHealth(db, nodeLivenessMs) });
    },
  );

  app.post<{ Body: { name: string; exits: ExitBody[] } }>(
    '/v1/pools',
    {
      config: { adminOnly: true, errors: ['pool_name_taken', 'country_unknown', 'exit_url_invalid', 'exit_duplicate'] },
      schema: {
        tags: ['pools'],
        summary: 'Create a pool',
        body: { type: 'object', additionalProperties: false, required: ['name', 'exits'], properties: { name: poolNameSchema, exits: exitsSchema } },
        response: { 201: poolSchema },
      },
    },
    async (request, reply) => {
      const { name } = request.body;
      const exits = normalizeExits(name, request.body.exits);
      const row = await db.transaction(async (tx) => {
        const { rows } = await tx.query<PoolRow>(
          `INSERT INTO pools (name, exits) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
          [name, JSON.stringify(exits)],
        );
        if (rows[0] === undefined) throw fail('pool_name_taken', name);
        await recordActivity(tx, auditContextOf(request), { teamId: null, action: 'pool.created', targetType: 'pool', targetId: name, details: { exits: exits.length } });
        await appendOutbox(tx, POOLS_CHANGED_EVENT);
        return rows[0];
      });
      return reply.status(201).send(renderPool(row, { withExits: true }));
    },
  );

  app.patch<{ Params: { name: string }; Body: { exits: ExitBody[] } }>(
    '/v1/pools/:name',
    {
      config: { adminOnly: true, errors: ['pool_not_found', 'country_unknown', 'exit_url_invalid', 'exit_duplicate'] },
      schema: {
        tags: ['pools'],
        summary: "Replace a pool's exits",
        description: 'Exits keep their ids when they stay, so sticky sessions on them continue.',
        params: poolParams,
        body: { type: 'object', additionalProperties: false, required: ['exits'], properties: { exits: exitsSchema } },
        response: { 200: poolSchema },
      },
    },
    async (request) => {
      const { name } = request.params;
      const exits = normalizeExits(name, request.body.exits);
      return renderPool(
        await db.transaction(async (tx) => {
          const { rows } = await tx.query<PoolRow>(
            `UPDATE pools SET exits = $2, updated_at = clock_timestamp() WHERE name = $1 RETURNING ${COLUMNS}`,
            [name, JSON.stringify(exits)],
          );
          if (rows[0] === undefined) throw fail('pool_not_found');
          await recordActivity(tx, auditContextOf(request), { teamId: null, action: 'pool.updated', targetType: 'pool', targetId: name, details: { exits: exits.length } });
          await appendOutbox(tx, POOLS_CHANGED_EVENT);
          return rows[0];
        }),
        { withExits: true },
      );
    },
  );
}
