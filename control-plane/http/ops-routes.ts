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
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    if (!isReady()) return reply.status(503).send({ status: 'starting' });
    try {
      await Promise.all(databases.map((db) => db.query('SELECT 1')));
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ status: 'database_unreachable' });
    }
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
}
