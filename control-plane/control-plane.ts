import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { retryWithBackoff } from '../lib/backoff.js';
import { createFailureLog } from '../lib/failure-log.js';
import type { FeedPublisher } from '../lib/feed/bus.js';
import type { Logger } from '../lib/logger.js';
import { registerActivityRoutes } from './activity/routes.js';
import { installErrorHandling } from './http/error-handler.js';
import { createControlPlaneMetrics } from './metrics.js';
import { authorize, createAdminAuth } from './http/auth.js';
import { registerApiDocument } from './http/api-document.js';
import { assertTeamAccess } from './http/team-access.js';
import { loadCursorSecret } from './bootstrap.js';
import type { ControlPlaneConfig } from './config.js';
import { createCursorCodec } from './http/cursor.js';
import { DatabaseUnavailableError, type Database } from './db/database.js';
import { createRetention, type Retention } from './db/retention.js';
import { migrate } from './db/migrate.js';
import { createPgDatabase } from './db/pg-database.js';
import { createPgliteDatabase } from './db/pglite-database.js';
import { registerDashboard } from './dashboard/serve-dashboard.js';
import { registerKeyRoutes } from './keys/routes.js';
import { registerNodeApi } from './node-api/routes.js';
import { registerOpsRoutes } from './http/ops-routes.js';
import { registerPoolRoutes } from './pools/routes.js';
import { confirmEpoch } from './revocation/feed-epoch.js';
import { createRelay, type Relay } from './revocation/relay.js';
import { registerRevocationStatus } from './revocation/status.js';
import { registerTeamRoutes } from './teams/routes.js';
import { registerTokenRoutes } from './tokens/routes.js';
import { registerUsageRoutes } from './usage/routes.js';
import { createTotalCache } from './keys/total-cache.js';
import { installValidation } from './http/validation.js';

export type ControlPlaneOptions = Omit<ControlPlaneConfig, 'logLevel' | 'nodeToken' | 'shutdownDeadlineMs' | 'regions'> & {
  nodeToken: string;
  logger: Logger;
  /** Each region's bus, by region name: the relay publishes revocations to all of them. */
  publishers: ReadonlyMap<string, FeedPublisher>;
};

export interface ControlPlane {
  url: string;
  port: number;
  /** Every route it serves, by method and URL pattern (what /openapi.json must describe). */
  routes: readonly { method: string; url: string }[];
  adminDb: Database;
  nodeDb: Database;
  relay: Relay;
  retention: Retention;
  close(): Promise<void>;
}

const REQUEST_ID = /^[\w.:-]{1,64}$/;

async function openDatabases(options: ControlPlaneOptions): Promise<{ adminDb: Database; nodeDb: Database; close(): Promise<void> }> {
  if ('dataDir' in options.database) {
    const shared = await createPgliteDatabase({ dataDir: options.database.dataDir });
    return { adminDb: shared, nodeDb: shared, close: () => shared.close() };
  }
  const { url } = options.database;
  const adminDb = createPgDatabase({ url, applicationName: 'portcullis-admin', ...options.adminPool });
  const nodeDb = createPgDatabase({ url, applicationName: 'portcullis-node-api', ...options.nodePool });
  return { adminDb, nodeDb, close: async () => void (await Promise.all([adminDb.close(), nodeDb.close()])) };
}

function buildApp(options: ControlPlaneOptions): FastifyInstance {
  return Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // Requests are logged by our onResponse hook, at debug level, with the path only.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    trustProxy: options.trustProxy,
    routerOptions: { maxParamLength: 200 },
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
}

export async function createControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { adminDb, nodeDb, close: closeDatabases } = await openDatabases(options);
  let app: FastifyInstance | undefined;
  let relay: Relay | undefined;
  let retention: Retention | undefined;
  try {
    // A database that is not up yet (it starts alongside us, or restarts) is waited for.
    await retryWithBackoff(() => migrate(adminDb), {
      minDelayMs: 250,
      maxDelayMs: 5_000,
      isRetryable: (error) => error instanceof DatabaseUnavailableError,
      failures: createFailureLog(options.logger, { failing: 'database unreachable at start-up; retrying', recovered: 'database reachable' }),
      describe: (error) => ({ reason: ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message }),
    });
    await confirmEpoch(adminDb, options.logger.child({ module: 'relay' }));
    const cursors = createCursorCodec(await loadCursorSecret(adminDb));
    const registry = new Registry();
    const metrics = createControlPlaneMetrics(registry, { admin: adminDb, node: nodeDb });
    const auth = createAdminAuth({ db: adminDb, configuredAdminToken: options.adminToken });
    let ready = false;

    app = buildApp(options);
    const routes: { method: string; url: string }[] = [];
    app.addHook('onRoute', (route) => {
      // HEAD routes are fastify's automatic twins of GET routes.
      for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push({ method, url: route.url });
    });
    installValidation(app);
    installErrorHandling(app);
    app.decorateRequest('principal', null);
    app.addHook('onSend', async (request, reply) => {
      reply.header('x-request-id', request.id);
    });
    app.addHook('onResponse', async (request, reply) => {
      const status = reply.statusCode;
      const route = request.routeOptions.url ?? 'unmatched';
      metrics.requestDuration.observe({ method: request.method, route, status: String(status) }, reply.elapsedTime / 1000);
      if (status >= 500) metrics.errors.inc({ status: String(status) });
      request.log.debug({ method: request.method, route, status, ms: reply.elapsedTime }, 'request');
    });

    // First, so that it sees every route registered after it.
    await registerApiDocument(app);
    registerOpsRoutes(app, { databases: [adminDb, nodeDb], registry, isReady: () => ready });
    await registerDashboard(app);
    registerNodeApi(app, { db: nodeDb, nodeToken: options.nodeToken, nodeLivenessMs: options.nodeLivenessMs, logger: options.logger.child({ module: 'node-api' }) });
    await app.register(async (v1) => {
      v1.addHook('onRequest', async (request) => {
        request.principal = await auth.authenticate(request);
        authorize(request);
      });
      // Every call about a team checks, once validated, that the caller may see that team.
      v1.addHook('preHandler', async (request) => {
        const { team } = request.params as { team?: string };
        if (team !== undefined) await assertTeamAccess(adminDb, request, team);
      });
      registerTeamRoutes(v1, { db: adminDb, cursors, publicProxyUrl: options.publicProxyUrl });
      registerTokenRoutes(v1, { db: adminDb, cursors });
      registerKeyRoutes(v1, {
        db: adminDb,
        cursors,
        totals: createTotalCache({ ttlMs: 2_000, maxEntries: 10_000 }),
        bodyLimitBytes: options.bodyLimitBytes,
        onExportPage: (rows) => metrics.exportPage('keys', rows),
      });
      registerActivityRoutes(v1, { db: adminDb, cursors });
      registerPoolRoutes(v1, { db: adminDb, cursors, nodeLivenessMs: options.nodeLivenessMs });
      registerUsageRoutes(v1, { db: adminDb, onExportPage: (rows) => metrics.exportPage('usage', rows) });
      registerRevocationStatus(v1, { db: adminDb, regions: [...options.publishers.keys()], nodeLivenessMs: options.nodeLivenessMs });
    });
    relay = await createRelay({
      db: adminDb,
      publishers: options.publishers,
      heartbeatMs: options.relay.heartbeatMs,
      pollMs: options.relay.pollMs,
      leaseMs: options.relay.leaseMs,
      logger: options.logger.child({ module: 'relay' }),
      metrics: metrics.relay,
    });
    const leader = relay;
    retention = createRetention({
      db: adminDb,
      settings: options.retention,
      isLeader: () => leader.isLeader(),
      regions: [...options.publishers.keys()],
      nodeLivenessMs: options.nodeLivenessMs,
      logger: options.logger.child({ module: 'retention' }),
    });

    await app.listen({ host: options.host, port: options.port });
    ready = true;
    const port = (app.server.address() as AddressInfo).port;
    const listening = app;
    const running = relay;
    const deleting = retention;
    let closing: Promise<void> | undefined;
    return {
      url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
      port,
      routes,
      adminDb,
      nodeDb,
      relay: running,
      retention: deleting,
      close() {
        // Not ready from the first moment of shutdown, while requests in flight finish.
        ready = false;
        closing ??= (async () => {
          await listening.close();
          await deleting.close();
          await running.close();
          await closeDatabases();
        })();
        return closing;
      },
    };
  } catch (error) {
    await app?.close();
    await retention?.close();
    await relay?.close();
    await closeDatabases();
    throw error;
  }
}
