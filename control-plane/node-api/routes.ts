import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import {
  MAX_NODE_API_BODY_BYTES,
  NodeReport,
  NodeReportAnswer,
  PoolsAnswer,
  RevocationsAnswer,
  RevocationsQuery,
  UsageAnswer,
  UsageBatch,
  VerifyAnswer,
  VerifyRequest,
} from '../../contract/node-api.js';
import type { Logger } from '../../lib/logger.js';
import type { Database } from '../db/database.js';
import { fail } from '../errors.js';
import { listAllPools } from '../pools/store.js';
import { CURRENT_EPOCH } from '../revocation/feed-epoch.js';
import { OUTBOX_COLUMNS, toChangeEvent, type OutboxRow } from '../revocation/outbox.js';
import { recordUsageBatch } from '../usage/store.js';
import { liveNodesInRegion, recordNodeReport } from './reports.js';
import { findKeysByHashes } from './verify.js';

/**
 * The API proxy nodes call (`/internal/v1`, contract/node-api.ts), on its own connection
 * pool so that no amount of admin traffic can slow key verification. Nodes send key
 * hashes, never keys.
 */
export interface NodeApiOptions {
  db: Database;
  nodeToken: string;
  nodeLivenessMs: number;
  logger: Logger;
}

const NODE_API = ['node API'];

const digest = (value: string) => createHash('sha256').update(value).digest();

export function registerNodeApi(app: FastifyInstance, { db, nodeToken, nodeLivenessMs, logger }: NodeApiOptions): void {
  const expected = digest(`Bearer ${nodeToken}`);

  app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => {
      const given = request.headers.authorization;
      if (given === undefined || !timingSafeEqual(digest(given), expected)) throw fail('node_token_invalid');
    });

    // Nodes batch their cache misses: one call answers for up to MAX_VERIFY_BATCH keys.
    scope.post<{ Body: VerifyRequest }>(
      '/internal/v1/keys/verify',
      { bodyLimit: MAX_NODE_API_BODY_BYTES, schema: { tags: NODE_API, summary: "Verify keys by hash (a node's cache misses, batched)", body: VerifyRequest, response: { 200: VerifyAnswer } } },
      async (request): Promise<VerifyAnswer> => {
        const { keys, seq, epoch } = await findKeysByHashes(db, request.body.hashes);
        return { keys: Object.fromEntries(keys), seq, epoch };
      },
    );

    scope.get<{ Querystring: RevocationsQuery }>(
      '/internal/v1/revocations',
      { schema: { tags: NODE_API, summary: 'Revocation feed events after a seq (catch-up)', querystring: RevocationsQuery, response: { 200: RevocationsAnswer } } },
      async (request): Promise<RevocationsAnswer> => {
        const { after, limit } = request.query;
        const { rows } = await db.query<OutboxRow>(`SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2`, [after, limit]);
        // Read after the page: a new epoch drawn in between is noticed, and the page dropped.
        const latest = await db.query<{ seq: number; epoch: string }>(`SELECT coalesce(max(seq), 0) AS seq, ${CURRENT_EPOCH} AS epoch FROM outbox`);
        return { events: rows.map(toChangeEvent), latestSeq: latest.rows[0]!.seq, epoch: latest.rows[0]!.epoch };
      },
    );

    scope.post<{ Body: NodeReport }>(
      '/internal/v1/nodes/report',
      { bodyLimit: MAX_NODE_API_BODY_BYTES, schema: { tags: NODE_API, summary: "A node's report: applied seq, acknowledgements, exit health", body: NodeReport, response: { 200: NodeReportAnswer } } },
      async (request): Promise<NodeReportAnswer> => {
        await recordNodeReport(db, request.body, logger);
        // A node falls back to a local rate limiter when its Redis is down, and divides each
        // key's limit by the number of live nodes in its region.
        return { regionNodes: await liveNodesInRegion(db, request.body.region, nodeLivenessMs) };
      },
    );

    scope.post<{ Body: UsageBatch }>(
      '/internal/v1/usage',
      { bodyLimit: MAX_NODE_API_BODY_BYTES, schema: { tags: NODE_API, summary: 'A numbered batch of metered usage, counted once', body: UsageBatch, response: { 200: UsageAnswer } } },
      async (request): Promise<UsageAnswer> => recordUsageBatch(db, request.body),
    );

    const poolsSchema = {
      tags: NODE_API,
      summary: 'Every pool with its exits',
      description: 'With an ETag; answers 304 to a matching If-None-Match.',
      response: { 200: PoolsAnswer, 304: { description: 'unchanged since the ETag given', type: 'null' } },
    };
    scope.get('/internal/v1/pools', { schema: poolsSchema }, async (request, reply) => {
      const pools = await listAllPools(db);
      const answer: PoolsAnswer = { pools: pools.map((pool) => ({ name: pool.name, exits: pool.exits })) };
      const body = JSON.stringify(answer);
      // Nodes poll this; an unchanged pool set costs them a 304 and no parsing.
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      reply.header('etag', etag);
      if (request.headers['if-none-match'] === etag) return reply.status(304).send();
      return reply.type('application/json').send(body);
    });
  });
}
