import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { retryWithBackoff } from '../lib/backoff.js';
import { createFailureLog } from '../lib/failure-log.js';
import type { FeedPublisher } from '../lib/feed/bus.js';
import type { Logger } from '../lib/logger.js';
import { TRACING_OFF, type Tracing } from '../lib/tracing/tracing.js';
import { registerActivityRoutes } from './activity/routes.js';
import { installErrorHandling } from './http/error-handler.js';
import { createControlPlaneMetrics } from './metrics.js';
import { authorize, createAdminAuth } from './http/auth.js';
import { registerApiDocument } from './http/api-document.js';
import { assertTeamAccess } from './http/team-access.js';
import { loadCursorSecret } from './bootstrap.js';
import type { ControlPlaneConfig } from './config.js';
import { createCursorCodec } from './http/cursor.js';
import { createHeavyCallLimit, installHeavyCallLimit, type HeavyCallLimit } from './http/heavy-calls.js';
import { DatabaseUnavailableError, type Database } from './db/database.js';
import { createRetention, type Retention } from './db/retention.js';
import { migrate } from './db/migrate.js';
import { createPgDatabase } from './db/pg-database.js';
import { createPgliteDatabase } from './db/pglite-database.js';
import { traceDatabase } from './db/traced-database.js';
import { createRequestSpans, type RequestSpans } from './http/request-spans.js';
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

export type ControlPlaneOptions = Omit<ControlPlaneConfig, 'logLevel' | 'nodeToken' | 'shutdownDeadlineMs' | 'regions' | 'publicProxyUrl' | 'tracingSettings'> & {
  nodeToken: string;
  /**
   * Where clients reach the proxy, asked on every /v1/me: the all-in-one start learns its
   * node's port only once the node listens, after the control plane.
   */
  publicProxyUrl?: () => string | undefined;
  logger: Logger;
  /** Each region's bus, by region name: the relay publishes revocations to all of them. */
  publishers: ReadonlyMap<string, FeedPublisher>;
  /** Traces of API calls, their SQL and the relay's publishes; off when absent. */
  tracing?: Tracing;
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
  heavyCalls: HeavyCallLimit;
  close(): Promise<void>;
}

const REQUEST_ID = /^[\w.:-]{1,64}$/;

/**
 * An instance without the relay role never takes the relay's lock, so never leads: nor
 * does it delete old rows, which only the leader does.
 */
const NOT_RELAYING: Relay = { isLeader: () => false, flush: async () => {}, close: async () => {} };

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

function buildApp(options: ControlPlaneOptions, requestSpans: RequestSpans | undefined): FastifyInstance {
  return Fastify({
    ...(requestSpans !== undefined && { serverFactory: requestSpans.serverFactory }),
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
  const tracing = options.tracing ?? TRACING_OFF;
  const databases = await openDatabases(options);
  const closeDatabases = databases.close;
  const adminDb = tracing.enabled ? traceDatabase(databases.adminDb, tracing, 'admin') : databases.adminDb;
  const nodeDb = tracing.enabled ? traceDatabase(databases.nodeDb, tracing, 'node') : databases.nodeDb;
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
    // The gauge reads the limit only when scraped, once both exist.
    const metrics = createControlPlaneMetrics(registry, { admin: adminDb, node: nodeDb }, () => heavyCalls.stats());
    const heavyCalls = createHeavyCallLimit({ ...options.heavyCalls, onRefused: metrics.heavyCallRefused });
    const auth = createAdminAuth({ db: adminDb, configuredAdminToken: options.adminToken });
    let ready = false;

    const requestSpans = tracing.enabled ? createRequestSpans(tracing) : undefined;
    app = buildApp(options, requestSpans);
    requestSpans?.install(app);
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

    const { roles } = options;
    // First, so that it sees every route registered after it.
    if (roles.has('admin')) await registerApiDocument(app);
    // Ready means the pools of the roles it serves answer (the relay's connection is its own).
    const databases = [...(roles.has('admin') || roles.has('relay') ? [adminDb] : []), ...(roles.has('node-api') ? [nodeDb] : [])];
    registerOpsRoutes(app, { databases, registry, isReady: () => ready });
    if (roles.has('admin')) await registerDashboard(app);
    if (roles.has('node-api')) registerNodeApi(app, { db: nodeDb, nodeToken: options.nodeToken, nodeLivenessMs: options.nodeLivenessMs, logger: options.logger.child({ module: 'node-api' }) });
    if (roles.has('admin')) await app.register(async (v1) => {
      v1.addHook('onRequest', async (request) => {
        request.principal = await auth.authenticate(request);
        authorize(request);
      });
      installHeavyCallLimit(v1, heavyCalls);
      // Every call about a team checks, once validated, that the caller may see that team.
      v1.addHook('preHandler', async (request) => {
        const { team } = request.params as { team?: string };
        if (team !== undefined) await assertTeamAccess(adminDb, request, team);
      });
      registerTeamRoutes(v1, { db: adminDb, cursors, publicProxyUrl: options.publicProxyUrl ?? (() => undefined) });
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
    relay = roles.has('relay')
      ? await createRelay({
          db: adminDb,
          publishers: options.publishers,
          heartbeatMs: options.relay.heartbeatMs,
          pollMs: options.relay.pollMs,
          leaseMs: options.relay.leaseMs,
          logger: options.logger.child({ module: 'relay' }),
          metrics: metrics.relay,
          tracing,
        })
      : NOT_RELAYING;
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
      heavyCalls,
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
