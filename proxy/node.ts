import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Server } from 'proxy-chain';
import type { Redis } from 'ioredis';
import type { FeedEvent, FeedSubscriber } from '../contract/feed.js';
import { createExitSelector } from '../geo/exit-selection.js';
import { drain } from '../lib/drain.js';
import type { Logger } from '../lib/logger.js';
import { createAuthorizer, type Authorization } from './auth/authorize.js';
import { openTunnel } from './egress/connect-tunnel.js';
import { createConnectionRegistry } from './ingress/connection-registry.js';
import { createDestinationPolicy } from '../lib/http/destination-policy.js';
import { planExitAttempts, type ExitAttemptsOptions } from './egress/exit-attempts.js';
import { createExitTransports } from './egress/exit-transport.js';
import { forwardHttp, hasBody, type ByteMeter, type ExitAttempts } from './egress/forward-http.js';
import { createKeyCache, type KeyGrant } from './auth/key-cache.js';
import { createProxyMetrics } from './metrics.js';
import { MAX_VERIFY_BATCH, type NodeApiClient } from './sync/node-api-client.js';
import { createNodeReporter, type NodeReporter } from './sync/node-reporter.js';
import { createPoolRefresher } from './sync/pool-refresher.js';
import { Refusal, refusalParts, renderRefusal, type RefusalCode } from './refusal.js';
import { parseAbsoluteHttpTarget, parseConnectTarget, type RequestTarget } from '../lib/http/request-target.js';
import { createRevocationFeed } from './sync/revocation-feed.js';
import { createTrafficLimits, type Admission } from './limits/traffic-limits.js';
import { createUsageMeter } from './limits/usage-meter.js';
import { createVerifyBatcher } from './auth/verify-batcher.js';

/** A node's tuning: every setting that is a number or a switch (see proxy/config.ts). */
export interface ProxyNodeTuning {
  nodeId: string;
  region: string;
  host: string;
  port: number;
  allowPrivateDestinations: boolean;
  cache: {
    maxEntries: number;
    ttlMs: number;
    negativeTtlMs: number;
    maxNegativeEntries: number;
    unknownPerSecond: number;
    unknownPerSecondPerClient: number;
    maxVerifyInFlight: number;
  };
  /** Verify calls to the control plane in flight at once, each for up to 100 keys. */
  maxVerifyCalls: number;
  /** A feed silent for longer than this makes cached decisions older than it untrusted. */
  stalenessBoundMs: number;
  failOpen: boolean;
  timeouts: { connectMs: number; responseMs: number; tunnelIdleMs: number; requestHeadersMs: number; keepAliveMs: number };
  maxIdleUpstreamSockets: number;
  poolRefreshMs: number;
  reportIntervalMs: number;
  /** How long rate limiting stays local after Redis fails before Redis is tried again. */
  limiterCooldownMs: number;
  usageFlushMs: number;
  maxPendingUsageBatches: number;
  /** Exits tried for one request before answering exit_failed. */
  maxExitAttempts: number;
  defaultSessionMinutes: number;
}

export interface ProxyNodeOptions extends ProxyNodeTuning {
  api: NodeApiClient;
  subscriber: FeedSubscriber;
  logger: Logger;
  /**
   * The region's Redis, for rate limits and concurrency caps shared by the region's nodes;
   * undefined in a single-process deployment, where they are kept in memory.
   */
  limitsRedis: Redis | undefined;
  now?: () => number;
}

export interface AppliedRevocation {
  seq: number;
  kind: FeedEvent['kind'];
  keyId: string | null;
  appliedAt: number;
  closedConnections: number;
}

export interface ProxyNode {
  nodeId: string;
  region: string;
  port: number;
  url: string;
  metrics: ReturnType<typeof createProxyMetrics>;
  appliedSeq(): number;
  feedSilenceMs(): number;
  isReady(): boolean;
  openTunnels(): number;
  /** Sends metered usage now (tests and shutdown); resolves when every batch is delivered or failed. */
  flushUsage(): Promise<void>;
  /** Client connections open now (tunnels, keep-alive and in-flight requests). */
  openConnections(): number;
  /** Stops accepting, lets open requests and tunnels finish up to `deadlineMs`, then closes. */
  close(deadlineMs?: number): Promise<void>;
}

const MAX_REPORTED_REVOCATIONS = 10_000;

export async function createProxyNode(options: ProxyNodeOptions): Promise<ProxyNode> {
  const now = options.now ?? Date.now;
  const { logger } = options;
  // The feed and the meter are created below; metrics read them only when scraped.
  const metrics = createProxyMetrics({ silenceMs: () => feed.silenceMs(), appliedSeq: () => feed.appliedSeq(), pendingUsage: () => usage.pending() });
  // Bytes are counted chunk by chunk: the labelled series are looked up once.
  const bytesInTotal = metrics.bytes.labels({ direction: 'in' });
  const bytesOutTotal = metrics.bytes.labels({ direction: 'out' });
  const policy = createDestinationPolicy({ allowPrivate: options.allowPrivateDestinations });
  const selector = createExitSelector({ now });
  const transports = createExitTransports({ policy, maxIdleSockets: options.maxIdleUpstreamSockets });
  const connections = createConnectionRegistry();
  let appliedRevocations: AppliedRevocation[] = [];
  let openTunnelCount = 0;
  let activeRequests = 0;
  let reporter: NodeReporter | undefined;
  let regionNodes = 1;
  const startedAt = now();
  const limits = createTrafficLimits({
    redis: options.limitsRedis,
    nodeId: options.nodeId,
    now,
    regionNodes: () => regionNodes,
    cooldownMs: options.limiterCooldownMs,
    onModeChange: (mode) => {
      metrics.limiterMode.set(mode === 'redis' ? 1 : 0);
      logger.warn({ mode }, mode === 'redis' ? 'rate limiting back on Redis' : 'Redis unreachable: rate limiting locally, limits shared out over the region');
    },
    onDecision: (result) => metrics.limitDecisions.inc({ result }),
  });
  metrics.limiterMode.set(limits.mode() === 'redis' ? 1 : 0);
  const usage = createUsageMeter({
    api: options.api,
    nodeId: options.nodeId,
    intervalMs: options.usageFlushMs,
    maxPendingBatches: options.maxPendingUsageBatches,
    logger,
    now,
  });

  const feed = createRevocationFeed({
    subscriber: options.subscriber,
    api: options.api,
    now,
    logger,
    retryMs: 250,
    stalenessBoundMs: options.stalenessBoundMs,
    onCatchUp: (reason, events) => {
      if (events > 0) metrics.catchUps.inc({ reason });
    },
    apply(event, receivedAt) {
      metrics.propagationDelay.observe({ region: options.region }, Math.max(0, receivedAt - event.at) / 1000);
      if (event.keyHash === null) {
        // About a whole team: its quota was used up, or changed.
        if (event.kind === 'quota.exceeded') {
          limits.markTeamOverQuota(event.teamId);
          connections.closeTunnels({ teamId: event.teamId });
        } else {
          limits.clearTeam(event.teamId);
          cache.forgetTeam(event.teamId);
        }
        return;
      }
      cache.applyEvent({ kind: event.kind, seq: event.seq, keyHash: event.keyHash });
      // A tunnel opened before the quota ran out would otherwise stream on without limit.
      if (event.kind === 'quota.exceeded') connections.closeTunnels({ keyHash: event.keyHash });
      if (event.kind !== 'key.revoked' && event.kind !== 'key.rotated') return;
      const closed = connections.closeKey(event.keyHash);
      if (event.kind === 'key.revoked' && event.keyId !== null) selector.dropSessions(event.keyId);
      if (appliedRevocations.length < MAX_REPORTED_REVOCATIONS) {
        appliedRevocations.push({ seq: event.seq, kind: event.kind, keyId: event.keyId, appliedAt: receivedAt, closedConnections: closed });
      }
      reporter?.nudge();
    },
  });

  const batcher = createVerifyBatcher({
    verifyMany: (hashes) => options.api.verifyKeys(hashes),
    maxBatchSize: MAX_VERIFY_BATCH,
    maxConcurrentCalls: options.maxVerifyCalls,
    onCall: (keys) => metrics.verifyBatchKeys.observe(keys),
  });
  const cache = createKeyCache({
    verify: batcher.verify,
    now,
    ...options.cache,
    // While the feed speaks, revocations reach us through it and cached grants stay good for
    // the TTL; once it has been silent past the bound, nothing older than the bound is trusted.
    trustWindowMs: () => (feed.silenceMs() > options.stalenessBoundMs ? options.stalenessBoundMs : options.cache.ttlMs),
    failOpen: options.failOpen,
    events: {
      hit: () => metrics.authCache.inc({ result: 'hit' }),
      miss: () => metrics.authCache.inc({ result: 'miss' }),
      coalesced: () => metrics.authCache.inc({ result: 'coalesced' }),
      negativeHit: () => metrics.authCache.inc({ result: 'negative_hit' }),
      verified: (seconds, outcome) => metrics.verifyDuration.observe({ outcome }, seconds),
      failedOpen: (keyId) => {
        metrics.failedOpen.inc();
        logger.error({ keyId }, 'FAIL_OPEN: serving a stale decision because the control plane is unreachable');
      },
    },
  });

  const authorizer = createAuthorizer({ cache, now, hasPool: (name) => selector.hasPool(name) });
  const attemptOptions: ExitAttemptsOptions = {
    selector,
    transports,
    maxAttempts: options.maxExitAttempts,
    defaultSessionMinutes: options.defaultSessionMinutes,
    onExitFailed: () => metrics.exitFailures.inc(),
  };
  const pools = createPoolRefresher({
    api: options.api,
    intervalMs: options.poolRefreshMs,
    logger,
    apply(next) {
      selector.setPools(next);
      transports.retain(new Set(next.flatMap((pool) => pool.exits.map((exit) => exit.id))));
    },
  });

  function refuseHttp(response: http.ServerResponse, request: http.IncomingMessage, refusal: Refusal): void {
    metrics.requests.inc({ outcome: refusal.code });
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const { status, headers, body } = refusalParts(refusal);
    // An unread request body would desynchronise the connection: close it instead.
    if (!request.complete && hasBody(request)) headers.connection = 'close';
    response.writeHead(status, headers);
    response.end(body);
  }

  function refuseConnect(socket: Socket, refusal: Refusal): void {
    metrics.tunnels.inc({ outcome: refusal.code });
    if (!socket.destroyed) socket.end(renderRefusal(refusal, false));
  }

  function toRefusal(error: unknown): Refusal {
    if (error instanceof Refusal) return error;
    logger.error({ err: error }, 'unexpected error while authorising');
    return new Refusal('auth_unavailable', 1);
  }

  interface Admitted {
    authorization: Authorization;
    attempts: ExitAttempts;
    admission: Admission;
  }

  /** Credentials, destination policy, exit choice and limits, in that order; throws a Refusal. */
  async function admit(request: http.IncomingMessage, socket: Socket, target: RequestTarget, isConnect: boolean): Promise<Admitted> {
    const decided = authorizer.authorize(request.headers, socket, isConnect);
    const authorization = decided instanceof Promise ? await decided : decided;
    if (policy.forbids(target.hostname, target.port)) throw new Refusal('destination_forbidden');
    const attempts = planExitAttempts(authorization, attemptOptions);
    const admitting = limits.admit(authorization.grant);
    return { authorization, attempts, admission: admitting instanceof Promise ? await admitting : admitting };
  }

  function meterFor({ keyId, teamId }: KeyGrant): ByteMeter {
    return (bytesIn, bytesOut) => {
      usage.addBytes(keyId, teamId, bytesIn, bytesOut);
      if (bytesIn > 0) bytesInTotal.inc(bytesIn);
      if (bytesOut > 0) bytesOutTotal.inc(bytesOut);
    };
  }

  async function handleRequest(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const target = parseAbsoluteHttpTarget(request.url);
    if (target === undefined) return refuseHttp(response, request, new Refusal('bad_request'));
    let admitted: Admitted;
    try {
      admitted = await admit(request, request.socket, target, false);
    } catch (error) {
      return refuseHttp(response, request, toRefusal(error));
    }
    const { authorization, attempts, admission } = admitted;
    response.once('close', admission.release);
    connections.track(authorization.keyHash, authorization.grant.teamId, request.socket, false);
    usage.count(authorization.grant.keyId, authorization.grant.teamId, 'request');
    const outcome = await forwardHttp(
      request,
      response,
      {
        target,
        stripAuthorization: authorization.target.source === 'authorization',
        attempts,
        extraResponseHeaders: admission.headers,
        onRefusal: (code: RefusalCode) => refuseHttp(response, request, new Refusal(code)),
        meter: meterFor(authorization.grant),
      },
      { connectTimeoutMs: options.timeouts.connectMs, responseTimeoutMs: options.timeouts.responseMs },
    );
    if (outcome !== 'exit_failed' && outcome !== 'destination_forbidden') metrics.requests.inc({ outcome });
  }

  async function handleConnect(request: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const target = parseConnectTarget(request.url);
    if (target === undefined) return refuseConnect(socket, new Refusal('bad_request'));
    let admitted: Admitted;
    try {
      admitted = await admit(request, socket, target, true);
    } catch (error) {
      return refuseConnect(socket, toRefusal(error));
    }
    const { authorization, attempts, admission } = admitted;
    connections.track(authorization.keyHash, authorization.grant.teamId, socket, true);
    openTunnelCount++;
    metrics.openTunnels.inc();
    const outcome = await openTunnel(
      socket,
      head,
      target,
      attempts,
      { connectTimeoutMs: options.timeouts.connectMs, idleTimeoutMs: options.timeouts.tunnelIdleMs, lookup: policy.lookup },
      admission.headers,
      meterFor(authorization.grant),
      () => {
        openTunnelCount--;
        metrics.openTunnels.dec();
        admission.release();
      },
    );
    // Only a tunnel that opened counts in usage; its bytes were metered as they flowed.
    if (outcome === 'ok') usage.count(authorization.grant.keyId, authorization.grant.teamId, 'tunnel');
    if (outcome === 'ok' || outcome === 'client_aborted') metrics.tunnels.inc({ outcome });
    if (outcome !== 'ok') {
      openTunnelCount--;
      metrics.openTunnels.dec();
      admission.release();
      if (outcome !== 'client_aborted') refuseConnect(socket, new Refusal(outcome));
    }
  }

  class PortcullisServer extends Server {
    override async onRequest(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
      activeRequests++;
      response.once('close', () => activeRequests--);
      await handleRequest(request, response);
    }

    override async onConnect(request: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
      await handleConnect(request, socket, head);
    }

    override onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
      if (error.code === 'ECONNRESET' || !socket.writable) return;
      const refusal = new Refusal('bad_request');
      metrics.requests.inc({ outcome: refusal.code });
      const rendered = renderRefusal(refusal, false);
      socket.end(error.code === 'HPE_HEADER_OVERFLOW' ? rendered.replace('400 Bad Request', '431 Request Header Fields Too Large') : rendered);
    }
  }

  const server = new PortcullisServer({ host: options.host, port: options.port, authRealm: 'portcullis' });
  server.server.headersTimeout = options.timeouts.requestHeadersMs;
  server.server.requestTimeout = 0;
  server.server.keepAliveTimeout = options.timeouts.keepAliveMs;

  try {
    await pools.start();
    await feed.start();
    await server.listen();
  } catch (error) {
    await feed.close();
    pools.close();
    transports.close();
    throw error;
  }
  const port = (server.server.address() as AddressInfo).port;
  logger.debug({ port, region: options.region }, 'proxy node listening');
  function takeAppliedRevocations(): AppliedRevocation[] {
    const taken = appliedRevocations;
    appliedRevocations = [];
    return taken;
  }
  reporter = createNodeReporter({
    api: options.api,
    intervalMs: options.reportIntervalMs,
    logger,
    takeApplied: takeAppliedRevocations,
    onRegionNodes: (count) => {
      regionNodes = Math.max(1, count);
    },
    snapshot: () => ({
      nodeId: options.nodeId,
      region: options.region,
      appliedSeq: feed.appliedSeq(),
      feedSilenceMs: Number.isFinite(feed.silenceMs()) ? Math.round(feed.silenceMs()) : null,
      openTunnels: openTunnelCount,
      startedAt,
      exitHealth: selector.summary(),
    }),
  });
  const runningReporter = reporter;

  return {
    nodeId: options.nodeId,
    region: options.region,
    port,
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    metrics,
    appliedSeq: () => feed.appliedSeq(),
    feedSilenceMs: () => feed.silenceMs(),
    isReady: () => feed.appliedSeq() >= 0 && pools.isLoaded(),
    openTunnels: () => openTunnelCount,
    flushUsage: () => usage.flush(),
    openConnections: () => server.connections.size,
    async close(deadlineMs = 0) {
      const closing = new Promise<void>((resolve) => server.server.close(() => resolve()));
      server.server.closeIdleConnections();
      await drain(() => activeRequests === 0 && openTunnelCount === 0, deadlineMs, () => server.server.closeIdleConnections());
      server.closeConnections();
      await closing;
      // Usage of the requests just drained goes out before the node is gone.
      await usage.close(Math.max(1_000, deadlineMs));
      limits.close();
      await runningReporter.close();
      await feed.close();
      pools.close();
      transports.close();
      selector.close();
      cache.clear();
    },
  };
}
