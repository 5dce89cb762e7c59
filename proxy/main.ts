import cluster from 'node:cluster';
import { createRedisSubscriber } from '../lib/feed/redis-bus.js';
import { createLogger } from '../lib/logger.js';
import { exitOnSignal } from '../lib/shutdown.js';
import { explainListenError } from '../lib/startup-error.js';
import { runProxyPrimary } from './cluster/primary.js';
import { runProxyWorker } from './cluster/worker.js';
import { readProxyConfig } from './config.js';
import { startProxy } from './start-proxy.js';

/** `portcullis proxy`: one proxy node, as one process or as a primary and its WORKERS. */
export async function runProxy(env: NodeJS.ProcessEnv): Promise<void> {
  const config = readProxyConfig(env);
  const logger = createLogger({ level: config.logLevel, name: 'proxy' });
  if (cluster.isWorker) return runProxyWorker(config, logger);
  if (config.workers > 1) return runProxyPrimary(config, logger);
  const running = await startProxy(config, { ...config, subscriber: createRedisSubscriber({ url: config.redisUrl, logger }) }, logger).catch((error: unknown) => {
    throw explainListenError(error, { PORT: config.port, METRICS_PORT: config.metricsPort });
  });
  exitOnSignal(logger, () => running.close(), config.shutdownDeadlineMs);
}
