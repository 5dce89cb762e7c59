import type { FeedSubscriber } from '../lib/feed/bus.js';
import type { Logger } from '../lib/logger.js';
import { createOpsServer } from '../lib/ops-server.js';
import { createRedisClient } from '../lib/redis-client.js';
import type { Tracing } from '../lib/tracing/tracing.js';
import type { ProxyNodeSettings } from './config.js';
import { createNodeApiClient } from './sync/node-api-client.js';
import { createProxyNode, type ProxyNode, type ProxyNodeOptions } from './node.js';

export interface RunningProxy {
  node: ProxyNode;
  close(): Promise<void>;
}

/**
 * Starts a node and its ops server (/healthz, /readyz, /metrics) from settings; a worker of
 * a node with several (`worker` set) has no ops server: its primary serves one for the node.
 */
export async function startProxy(
  settings: ProxyNodeSettings,
  connection: { controlPlaneUrls: readonly string[]; nodeToken: string; subscriber: FeedSubscriber; redisUrl: string | undefined },
  logger: Logger,
  tracing?: Tracing,
  worker?: ProxyNodeOptions['worker'],
): Promise<RunningProxy> {
  // Commands fail at once while Redis is down (no queue), so limits fall back to local.
  const limitsRedis =
    connection.redisUrl === undefined
      ? undefined
      : createRedisClient(connection.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 250, enableAutoPipelining: true });
  // Its failures show as the limiters falling back to local, which the node logs once each way.
  limitsRedis?.on('error', () => {});
  const node = await createProxyNode({
    ...settings,
    api: createNodeApiClient({ baseUrls: connection.controlPlaneUrls, nodeToken: connection.nodeToken, timeoutMs: settings.verifyTimeoutMs, logger, tracing }),
    subscriber: connection.subscriber,
    limitsRedis,
    logger,
    tracing,
    ...(worker !== undefined && { worker }),
  }).catch((error: unknown) => {
    limitsRedis?.disconnect();
    throw error;
  });
  if (worker !== undefined) {
    logger.info({ url: node.url }, 'proxy worker listening');
    return {
      node,
      async close() {
        await node.close(settings.shutdownDeadlineMs);
        limitsRedis?.disconnect();
      },
    };
  }
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
