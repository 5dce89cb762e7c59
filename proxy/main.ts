import { Redis } from 'ioredis';
import { createRedisSubscriber } from '../lib/feed/redis-bus.js';
import type { FeedSubscriber } from '../lib/feed/bus.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { createOpsServer } from '../lib/ops-server.js';
import { exitOnSignal } from '../lib/shutdown.js';
import { explainListenError } from '../lib/startup-error.js';
import { createTracing, type Tracing } from '../lib/tracing/tracing.js';
import { readProxyConfig, type ProxyNodeSettings } from './config.js';
import { createNodeApiClient } from './sync/node-api-client.js';
import { createProxyNode, type ProxyNode } from './node.js';

export interface RunningProxy {
  node: ProxyNode;
  close(): Promise<void>;
}

/** Starts a node and its ops server (/healthz, /readyz, /metrics) from settings. */
export async function startProxy(
  settings: ProxyNodeSettings,
  connection: { controlPlaneUrl: string; nodeToken: string; subscriber: FeedSubscriber; redisUrl: string | undefined },
  logger: Logger,
  tracing?: Tracing,
): Promise<RunningProxy> {
  // Commands fail at once while Redis is down (no queue), so limits fall back to local.
  const limitsRedis =
    connection.redisUrl === undefined
      ? undefined
      : new Redis(connection.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 250, enableAutoPipelining: true });
  // Its failures show as the limiters falling back to local, which the node logs once each way.
  limitsRedis?.on('error', () => {});
  const node = await createProxyNode({
    ...settings,
    api: createNodeApiClient({ baseUrl: connection.controlPlaneUrl, nodeToken: connection.nodeToken, timeoutMs: settings.verifyTimeoutMs, logger, tracing }),
    subscriber: connection.subscriber,
    limitsRedis,
    logger,
    tracing,
  });
  const ops = await createOpsServer({ host: settings.host, port: settings.metricsPort, registry: node.metrics.registry, isReady: node.isReady }).catch(async (error: unknown) => {
    await node.close();
    limitsRedis?.disconnect();
    throw error;
  });
  logger.info({ url: node.url, region: settings.region, nodeId: settings.nodeId, metricsPort: ops.port }, 'proxy node listening');
  return {
    node,
    async close() {
      await node.close(settings.shutdownDeadlineMs);
      await ops.close();
      limitsRedis?.disconnect();
    },
  };
}

/** `portcullis proxy`: one proxy node. */
export async function runProxy(env: NodeJS.ProcessEnv): Promise<void> {
  const config = readProxyConfig(env);
  const tracing = createTracing({ settings: config.tracingSettings, serviceName: 'portcullis-proxy' });
  const logger = createLogger({ level: config.logLevel, name: 'proxy', ...(tracing.enabled && { mixin: tracing.logFields }) });
  const running = await startProxy(config, { ...config, subscriber: createRedisSubscriber({ url: config.redisUrl, logger }) }, logger, tracing).catch(async (error: unknown) => {
    await tracing.close();
    throw explainListenError(error, { PORT: config.port, METRICS_PORT: config.metricsPort });
  });
  exitOnSignal(
    logger,
    async () => {
      await running.close();
      // Spans of the requests just drained go out before the process does.
      await tracing.close();
    },
    config.shutdownDeadlineMs,
  );
}
