import cluster from 'node:cluster';
import { createRedisSubscriber } from '../lib/feed/redis-bus.js';
import { createLogger } from '../lib/logger.js';
import { exitOnSignal } from '../lib/shutdown.js';
import { explainListenError } from '../lib/startup-error.js';
import { createTracing } from '../lib/tracing/tracing.js';
import { runProxyPrimary } from './cluster/primary.js';
import { runProxyWorker } from './cluster/worker.js';
import { readProxyConfig } from './config.js';
import { startProxy } from './start-proxy.js';

/** `portcullis proxy`: one proxy node, as one process or as a primary and its WORKERS. */
export async function runProxy(env: NodeJS.ProcessEnv): Promise<void> {
  const config = readProxyConfig(env);
  const tracing = createTracing({ settings: config.tracingSettings, serviceName: 'portcullis-proxy' });
  const logger = createLogger({ level: config.logLevel, name: 'proxy', ...(tracing.enabled && { mixin: tracing.logFields }) });
  // Requests are traced where they are served: in the workers; the primary serves none.
  if (cluster.isWorker) return runProxyWorker(config, logger, tracing);
  if (config.workers > 1) {
    await tracing.close();
    return runProxyPrimary(config, logger);
  }
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
