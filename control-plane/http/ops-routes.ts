import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Database } from '../db/database.js';

export interface OpsRoutesOptions {
  databases: Database[];
  registry: Registry;
  isReady: () => boolean;
}

/**
 * A database that does not answer within this is not ready either: a partition would
 * otherwise hold the probe until the pool's connection timeout.
 */
const READY_CHECK_MS = 1_000;

/** /healthz: the process answers. /readyz: it can do its job (database reachable). */
export function registerOpsRoutes(app: FastifyInstance, { databases, registry, isReady }: OpsRoutesOptions): void {
  const status = (values: string[], description: string) => ({
    description,
    type: 'object',
    required: ['status'],
    properties: { status: { type: 'string', enum: values } },
  });
  app.get('/healthz', { schema: { tags: ['operations'], summary: 'The process answers', response: { 200: status(['ok'], 'alive') } } }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'The process can do its job (its databases answer)',
        response: { 200: status(['ready'], 'ready'), 503: status(['not_ready', 'database_unreachable'], 'starting, stopping, or its databases do not answer') },
      },
    },
    async (_request, reply) => {
      if (!isReady()) return reply.status(503).send({ status: 'not_ready' });
      let timer: NodeJS.Timeout | undefined;
      const reachable = await Promise.race([
        Promise.all(databases.map((db) => db.query('SELECT 1'))).then(
          () => true,
          () => false,
        ),
        new Promise<false>((resolve) => (timer = setTimeout(resolve, READY_CHECK_MS, false))),
      ]);
      clearTimeout(timer);
      return reachable ? { status: 'ready' } : reply.status(503).send({ status: 'database_unreachable' });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        response: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    },
  );
}
