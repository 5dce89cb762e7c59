import type { Redis } from 'ioredis';
import { MAX_VERIFY_BATCH, type NodeReport, type NodeReportAnswer } from '../contract/node-api.js';
import { createExitSelector } from '../geo/exit-selection.js';
import type { FeedSubscriber } from '../lib/feed/bus.js';
import { createDestinationPolicy } from '../lib/http/destination-policy.js';
import { createReadBuffers } from '../lib/http/splice.js';
import type { Logger } from '../lib/logger.js';
import { TRACING_OFF, type Tracing } from '../lib/tracing/tracing.js';
import { createAuthorizer } from './auth/authorize.js';
import type { KeyGrant } from '../access/grant.js';
import { createKeyCache } from './auth/key-cache.js';
import { createTeamLockdowns } from './auth/team-lockdowns.js';
import { createVerifyBatcher } from './auth/verify-batcher.js';
import { createExitTransports } from './egress/exit-transport.js';
import { createAdmitter } from './ingress/admission.js';
import { createClientAddresses } from './ingress/client-address.js';
import { createConnectRequests } from './ingress/connect-requests.js';
import { createConnectionRegistry } from './ingress/connection-registry.js';
import { createHttpRequests } from './ingress/http-requests.js';
import type { ProxyProtocolMode } from './ingress/proxy-protocol.js';
import { createProxyServer } from './ingress/server.js';
import { createSocksServer, type SocksServer } from './ingress/socks-server.js';
import { createTrafficLimits } from './limits/traffic-limits.js';
import type { NodeSlots } from './limits/concurrency-limiter.js';
import { createTunnelMeter } from './limits/tunnel-meter.js';
import { createUsageMeter, type ByteMeter } from './limits/usage-meter.js';
import { countsBy, createProxyMetrics } from './metrics.js';
import { createFeedEffects } from './sync/feed-effects.js';
import type { NodeApiClient } from './sync/node-api-client.js';
import { createNodeReporter, type NodeReporter } from './sync/node-reporter.js';
import { createPoolRefresher } from './sync/pool-refresher.js';
import { createRevocationFeed } from './sync/revocation-feed.js';

/** A node's tuning: every setting that is a number or a switch (see proxy/config.ts). */
export interface ProxyNodeTuning {
  nodeId: string;
  region: string;
  host: string;
  port: number;
  /** The SOCKS5 listener's port; undefined: none. */
  socksPort: number | undefined;
  /** The HTTPS proxy listener (clients reach the node over TLS); undefined: none. */
  tlsProxy: { port: number; cert: Buffer; key: Buffer } | undefined;
  allowPrivateDestinations: boolean;
  /** Whether a load balancer in front sends a PROXY protocol header on each connection, and which versions. */
  proxyProtocol: ProxyProtocolMode;
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
  /** How long an idle keep-alive connection to an exit or a target is kept. */
  upstreamKeepAliveMs: number;
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
  /**
   * A worker of a node that runs several (WORKERS): its number, which sets it apart in the
   * region's Redis, the node's per-node concurrency slots (counted by the primary), and where
   * its reports go (the primary, which reports for the whole node once every worker applied a revocation).
   */
  worker?: { index: number; workers: number; nodeSlots: NodeSlots; report(report: NodeReport): Promise<NodeReportAnswer> };
  now?: () => number;
  /** Traces of requests, tunnels and revocations applied; off when absent. */
  tracing?: Tracing;
}

export interface ProxyNode {
  nodeId: string;
  region: string;
  port: number;
  url: string;
  /** The SOCKS5 listener's bound port, when there is one. */
  socksPort: number | undefined;
  /** The HTTPS proxy listener's bound port, when there is one. */
  tlsPort: number | undefined;
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

/** The composition root of a proxy node: creates its parts and wires them together. */
export async function createProxyNode(options: ProxyNodeOptions): Promise<ProxyNode> {
  const now = options.now ?? Date.now;
  const { logger } = options;
  const tracing = options.tracing ?? TRACING_OFF;
  // The feed and the meter are created below; metrics read them only when scraped.
  const metrics = createProxyMetrics({ silenceMs: () => feed.silenceMs(), appliedSeq: () => feed.appliedSeq(), pendingUsage: () => usage.pending() });
  const policy = createDestinationPolicy({ allowPrivate: options.allowPrivateDestinations });
  const selector = createExitSelector({ now });
  const transports = createExitTransports({ policy, keepAliveMs: options.upstreamKeepAliveMs, connectTimeoutMs: options.timeouts.connectMs });
  const connections = createConnectionRegistry();
  const clientAddresses = createClientAddresses();
  let regionNodes = 1;
  // Created once the node listens; revocations applied before that are reported in its first report.
  let reporter: NodeReporter | undefined;
  const startedAt = now();
  const limits = createTrafficLimits({
    redis: options.limitsRedis,
    nodeId: options.worker === undefined ? options.nodeId : `${options.nodeId}:worker-${options.worker.index}`,
    nodeSlots: options.worker?.nodeSlots,
    now,
    regionNodes: () => regionNodes,
    cooldownMs: options.limiterCooldownMs,
    onModeChange: (mode) => {
      metrics.limiterMode.set(mode === 'redis' ? 1 : 0);
      logger.warn({ mode }, mode === 'redis' ? 'rate limiting back on Redis' : 'Redis unreachable: rate limiting locally, limits shared out over the region');
    },
    onDecision: countsBy(metrics.limitDecisions, 'result'),
  });
  metrics.limiterMode.set(limits.mode() === 'redis' ? 1 : 0);
  const bytesUpTotal = metrics.bytes.labels({ direction: 'in' });
  const bytesDownTotal = metrics.bytes.labels({ direction: 'out' });
  const countBytes = (keyId: string, teamId: string, bytesUp: number, bytesDown: number) => {
    usage.addBytes(keyId, teamId, bytesUp, bytesDown);
    if (bytesUp > 0) bytesUpTotal.inc(bytesUp);
    if (bytesDown > 0) bytesDownTotal.inc(bytesDown);
  };
  const tunnelMeter = createTunnelMeter({ addBytes: countBytes });
  const usage = createUsageMeter({
    api: options.api,
    nodeId: options.nodeId,
    intervalMs: options.usageFlushMs,
    maxPendingBatches: options.maxPendingUsageBatches,
    logger,
    now,
    collect: tunnelMeter.collect,
  });

  const batcher = createVerifyBatcher({
    verifyMany: (hashes, parent) => options.api.verifyKeys(hashes, parent),
    ...(tracing.enabled && { activeSpan: () => tracing.activeSpan() }),
    maxBatchSize: MAX_VERIFY_BATCH,
    maxConcurrentCalls: options.maxVerifyCalls,
    onCall: (keys) => metrics.verifyBatchKeys.observe(keys),
  });
  const cacheLookups = countsBy(metrics.authCache, 'result');
  const cache = createKeyCache({
    verify: batcher.verify,
    now,
    ...options.cache,
    // While the feed speaks, revocations reach us through it and cached grants stay good for
    // the TTL; once it has been silent past the bound, nothing older than the bound is trusted.
    trustWindowMs: () => (feed.silenceMs() > options.stalenessBoundMs ? options.stalenessBoundMs : options.cache.ttlMs),
    failOpen: options.failOpen,
    epoch: () => feed.epoch(),
    resync: () => feed.resync(),
    events: {
      hit: () => cacheLookups('hit'),
      miss: () => cacheLookups('miss'),
      coalesced: () => cacheLookups('coalesced'),
      negativeHit: () => cacheLookups('negative_hit'),
      verified: (seconds, outcome) => metrics.verifyDuration.observe({ outcome }, seconds),
      failedOpen: (keyId) => {
        metrics.failedOpen.inc();
        logger.error({ keyId }, 'FAIL_OPEN: serving a stale decision because the control plane is unreachable');
      },
    },
  });

  const lockdowns = createTeamLockdowns();
  const effects = createFeedEffects({
    cache,
    lockdowns,
    limits,
    connections,
    selector,
    onRevocationApplied: () => reporter?.nudge(),
    onPoolsChanged: () => void pools.refresh(),
    verify: batcher.verify,
    epoch: () => feed.epoch(),
    now,
    logger,
    tracing,
    node: { nodeId: options.nodeId, region: options.region },
  });
  const feed = createRevocationFeed({
    subscriber: options.subscriber,
    api: options.api,
    now,
    logger,
    retryMs: 250,
    stalenessBoundMs: options.stalenessBoundMs,
    onCatchUp: (reason, events) => {
      if (events > 0 || reason === 'epoch') metrics.catchUps.inc({ reason });
    },
    onNewEpoch: () => void effects.startOver(),
    apply(event, receivedAt) {
      metrics.propagationDelay.observe({ region: options.region }, Math.max(0, receivedAt - event.at) / 1000);
      effects.apply(event, receivedAt);
    },
  });
  const pools = createPoolRefresher({
    api: options.api,
    intervalMs: options.poolRefreshMs,
    logger,
    apply(next) {
      selector.setPools(next);
      transports.retain(new Set(next.flatMap((pool) => pool.exits.map((exit) => exit.id))));
    },
  });

  const admitter = createAdmitter({
    authorizer: createAuthorizer({ cache, lockdowns, now, hasPool: (name) => selector.hasPool(name), clientAddressOf: clientAddresses.of }),
    policy,
    limits,
    attempts: {
      selector,
      transports,
      maxAttempts: options.maxExitAttempts,
      defaultSessionMinutes: options.defaultSessionMinutes,
      onExitFailed: () => metrics.exitFailures.inc(),
    },
    logger,
  });
  const meterFor = ({ keyId, teamId }: KeyGrant): ByteMeter => (bytesUp, bytesDown) => countBytes(keyId, teamId, bytesUp, bytesDown);
  const countRequest = countsBy(metrics.requests, 'outcome');
  const countTunnel = countsBy(metrics.tunnels, 'outcome');
  const connectRequests = createConnectRequests({
    admit: admitter.admit,
    connections,
    usage,
    tunnelMeter,
    countOutcome: countTunnel,
    openTunnels: metrics.openTunnels,
    tunnelOptions: {
      connectTimeoutMs: options.timeouts.connectMs,
      idleTimeoutMs: options.timeouts.tunnelIdleMs,
      lookup: policy.lookup,
      readBuffers: createReadBuffers(),
    },
    tracing,
  });
  const server = createProxyServer({
    host: options.host,
    port: options.port,
    httpRequests: createHttpRequests({
      admit: admitter.admit,
      connections,
      usage,
      meterFor,
      countOutcome: countRequest,
      timeouts: { responseTimeoutMs: options.timeouts.responseMs },
      tracing,
    }),
    connectRequests,
    countRequest,
    countTunnel,
    timeouts: options.timeouts,
    proxyProtocol: options.proxyProtocol,
    tls: options.tlsProxy,
    clientAddresses,
    logger,
  });

  const socks: SocksServer | undefined =
    options.socksPort === undefined
      ? undefined
      : createSocksServer({
          host: options.host,
          port: options.socksPort,
          admit: admitter.stepwise,
          connectRequests,
          countTunnel,
          handshakeTimeoutMs: options.timeouts.requestHeadersMs,
          logger,
        });

  let port: number;
  let socksPort: number | undefined;
  let tlsPort: number | undefined;
  try {
    await pools.start();
    await feed.start();
    ({ port, tlsPort } = await server.listen());
    socksPort = await socks?.listen();
  } catch (error) {
    await Promise.all([server.close(0), socks?.close(0)]);
    await feed.close();
    pools.close();
    await transports.close();
    throw error;
  }
  logger.debug({ port, socksPort, tlsPort, region: options.region }, 'proxy node listening');
  reporter = createNodeReporter({
    send: options.worker?.report ?? ((report) => options.api.report(report)),
    intervalMs: options.reportIntervalMs,
    logger,
    takeApplied: effects.takeApplied,
    onRegionNodes: (count) => {
      regionNodes = Math.max(1, count);
    },
    snapshot: () => ({
      nodeId: options.nodeId,
      region: options.region,
      appliedSeq: feed.appliedSeq(),
      epoch: feed.epoch(),
      feedSilenceMs: Number.isFinite(feed.silenceMs()) ? Math.round(feed.silenceMs()) : null,
      openTunnels: connectRequests.open(),
      startedAt,
      exitHealth: selector.summary(),
    }),
  });

  const runningReporter = reporter;
  let closing = false;

  return {
    nodeId: options.nodeId,
    region: options.region,
    port,
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    socksPort,
    tlsPort,
    metrics,
    appliedSeq: () => feed.appliedSeq(),
    feedSilenceMs: () => feed.silenceMs(),
    // Not ready from the first moment of shutdown, while open requests and tunnels drain.
    isReady: () => !closing && feed.appliedSeq() >= 0 && pools.isLoaded(),
    openTunnels: () => connectRequests.open(),
    flushUsage: () => usage.flush(),
    openConnections: () => server.connections() + (socks?.connections() ?? 0),
    async close(deadlineMs = 0) {
      closing = true;
      await Promise.all([server.close(deadlineMs), socks?.close(deadlineMs)]);
      // Usage of the requests just drained goes out before the node is gone.
      await usage.close(Math.max(1_000, deadlineMs));
      limits.close();
      await runningReporter.close();
      await feed.close();
      pools.close();
      await transports.close();
      selector.close();
      cache.clear();
    },
  };
}
