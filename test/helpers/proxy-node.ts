import { randomBytes } from 'node:crypto';
import type { FeedSubscriber } from '../../lib/feed/bus.js';
import { createLogger } from '../../lib/logger.js';
import { createNodeApiClient, type NodeApiClient } from '../../proxy/sync/node-api-client.js';
import { createProxyNode, type ProxyNode, type ProxyNodeOptions } from '../../proxy/node.js';

export interface TestProxyNodeOptions extends Partial<Omit<ProxyNodeOptions, 'api' | 'subscriber'>> {
  /** One control plane, or several on one database. */
  controlPlaneUrl: string | readonly string[];
  nodeToken: string;
  subscriber: FeedSubscriber;
  /** Puts a fault in front of the real node API client (a delay, a gate). */
  wrapApi?: (api: NodeApiClient) => NodeApiClient;
}

/** A proxy node on an ephemeral port with test-friendly defaults (loopback destinations allowed). */
export function startTestProxyNode({ controlPlaneUrl, nodeToken, subscriber, wrapApi = (api) => api, ...overrides }: TestProxyNodeOptions): Promise<ProxyNode> {
  const logger = overrides.logger ?? createLogger({ level: (process.env.TEST_LOG_LEVEL as 'info' | undefined) ?? 'silent', name: 'proxy' });
  return createProxyNode({
    nodeId: `node-${randomBytes(3).toString('hex')}`,
    region: 'local',
    host: '127.0.0.1',
    port: 0,
    socksPort: undefined,
    tlsProxy: undefined,
    api: wrapApi(createNodeApiClient({ baseUrls: typeof controlPlaneUrl === 'string' ? [controlPlaneUrl] : controlPlaneUrl, nodeToken, timeoutMs: 2_000, logger, tracing: overrides.tracing })),
    subscriber,
    logger,
    allowPrivateDestinations: true,
    proxyProtocol: 'off',
    cache: { maxEntries: 100_000, ttlMs: 60_000, negativeTtlMs: 10_000, maxNegativeEntries: 10_000, unknownPerSecond: 1_000, unknownPerSecondPerClient: 1_000, maxVerifyInFlight: 1_000 },
    maxVerifyCalls: 8,
    stalenessBoundMs: 2_000,
    failOpen: false,
    timeouts: { connectMs: 2_000, responseMs: 30_000, tunnelIdleMs: 60_000, requestHeadersMs: 10_000, keepAliveMs: 5_000 },
    upstreamKeepAliveMs: 30_000,
    poolRefreshMs: 1_000,
    reportIntervalMs: 500,
    limitsRedis: undefined,
    limiterCooldownMs: 500,
    usageFlushMs: 500,
    maxPendingUsageBatches: 1_000,
    maxExitAttempts: 3,
    defaultSessionMinutes: 10,
    ...overrides,
  });
}
