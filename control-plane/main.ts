import { createRedisPublisher } from '../lib/feed/redis-bus.js';
import { createLogger } from '../lib/logger.js';
import { createTracing } from '../lib/tracing/tracing.js';
import { exitOnSignal } from '../lib/shutdown.js';
import { explainListenError } from '../lib/startup-error.js';
import { createFirstAdminToken } from './bootstrap.js';
import { readControlPlaneConfig } from './config.js';
import { createControlPlane } from './control-plane.js';

/** `portcullis control-plane`: the admin API, the node API and the relay. */
export async function runControlPlane(env: NodeJS.ProcessEnv): Promise<void> {
  const config = readControlPlaneConfig(env, { dataDir: './data', requireNodeToken: true });
  const tracing = createTracing({ settings: config.tracingSettings, serviceName: 'portcullis-control-plane' });
  const logger = createLogger({ level: config.logLevel, name: 'control-plane', ...(tracing.enabled && { mixin: tracing.logFields }) });
  if (config.regions.size === 0) logger.warn('REGIONS is empty: revocations reach no proxy node through a feed');
  const publishers = new Map([...config.regions].map(([region, url]) => [region, createRedisPublisher({ url })]));
  const controlPlane = await createControlPlane({ ...config, nodeToken: config.nodeToken!, publicProxyUrl: () => config.publicProxyUrl, logger, publishers, tracing }).catch(async (error: unknown) => {
    await tracing.close();
    throw explainListenError(error, { PORT: config.port });
  });
  exitOnSignal(
    logger,
    async () => {
      await controlPlane.close();
      await tracing.close();
    },
    config.shutdownDeadlineMs,
  );
  logger.info({ url: controlPlane.url, roles: [...config.roles] }, 'control plane listening');
  // Created once the port is bound: a start that fails never leaves a token nobody saw; and
  // by an instance serving the admin API, whose operator is the one to read it.
  const firstAdminToken = config.adminToken === undefined && config.roles.has('admin') ? await createFirstAdminToken(controlPlane.adminDb) : undefined;
  if (firstAdminToken !== undefined) {
    process.stdout.write(`\nFirst start: platform admin token (shown once, store it now):\n  ${firstAdminToken}\n\n`);
  }
}
