import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import type { Database } from '../db/database.js';
import { findKeysByHashes } from '../keys/store.js';
import { OUTBOX_COLUMNS, toFeedEvent, type OutboxRow } from '../revocation/outbox.js';
import { liveNodesInRegion, nodeReportSchema, recordNodeReport, type NodeReport } from './reports.js';
import { recordUsageBatch, usageBatchSchema, type UsageBatch } from '../usage/store.js';
import { listAllPools } from '../pools/store.js';

/**
 * The API proxy nodes call (`/internal/v1`), on its own connection pool so that no
 * amount of admin traffic can slow key verification. Nodes send key hashes, never keys.
 */
export interface NodeApiOptions {
  db: Database;
  nodeToken: string;
  nodeLivenessMs: number;
}

/** Part of the node API's contract: the most hashes one verify call may carry. */
const MAX_VERIFY_BATCH = 100;

const digest = (value: string) => createHash('sha256').update(value).digest();

export function registerNodeApi(app: FastifyInstance, { db, nodeToken, nodeLivenessMs }: NodeApiOptions): void {
  const expected = digest(`Bearer ${nodeToken}`);

  app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => {
      const given = request.headers.authorization;
      if (given === undefined || !timingSafeEqual(digest(given), expected)) {
        throw new ApiError(401, 'node_token_invalid', 'this API is for proxy nodes; send the node token');
      }
    });

    // Nodes batch their cache misses: one call answers for up to MAX_VERIFY_BATCH keys.
    scope.post<{ Body: { hashes: string[] } }>(
      '/internal/v1/keys/verify',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['hashes'],
            properties: {
              hashes: { type: 'array', minItems: 1, maxItems: MAX_VERIFY_BATCH, uniqueItems: true, items: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
            },
          },
        },
      },
      async (request) => {
        const { keys, seq } = await findKeysByHashes(db, request.body.hashes);
        return { keys: Object.fromEntries(keys), seq };
      },
    );

    scope.get<{ Querystring: { after: number; limit: number } }>(
      '/internal/v1/revocations',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            required: ['after'],
            properties: { after: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 5000, default: 1000 } },
          },
        },
      },
      async (request) => {
        const { after, limit } = request.query;
        const { rows } = await db.query<OutboxRow>(`SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2`, [after, limit]);
        const latest = await db.query<{ seq: number }>('SELECT coalesce(max(seq), 0) AS seq FROM outbox');
        return {
          events: rows.map((row) => {
            const { type: _type, ...event } = toFeedEvent(row);
            return event;
          }),
          latestSeq: latest.rows[0]!.seq,
        };
      },
    );

    scope.post<{ Body: NodeReport }>('/internal/v1/nodes/report', { schema: { body: nodeReportSchema } }, async (request) => {
      await recordNodeReport(db, request.body);
      // A node falls back to a local rate limiter when its Redis is down, and divides each
      // key's limit by the number of live nodes in its region.
      return { regionNodes: await liveNodesInRegion(db, request.body.region, nodeLivenessMs) };
    });

    scope.post<{ Body: UsageBatch }>('/internal/v1/usage', { schema: { body: usageBatchSchema } }, async (request) => recordUsageBatch(db, request.body));

    scope.get('/internal/v1/pools', async (request, reply) => {
      const pools = await listAllPools(db);
      const body = JSON.stringify({ pools: pools.map((pool) => ({ name: pool.name, exits: pool.exits })) });
      // Nodes poll this; an unchanged pool set costs them a 304 and no parsing.
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      reply.header('etag', etag);
      if (request.headers['if-none-match'] === etag) return reply.status(304).send();
      return reply.type('application/json').send(body);
    });
  });
}
