import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Database } from '../db/database.js';

export interface OpsRoutesOptions {
  databases: Database[];
  registry: Registry;
  isReady: () => boolean;
}

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
        response: { 200: status(['ready'], 'ready'), 503: status(['starting', 'database_unreachable'], 'not ready') },
      },
    },
    async (_request, reply) => {
      if (!isReady()) return reply.status(503).send({ status: 'starting' });
      try {
        await Promise.all(databases.map((db) => db.query('SELECT 1')));
        return { status: 'ready' };
      } catch {
        return reply.status(503).send({ status: 'database_unreachable' });
      }
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
