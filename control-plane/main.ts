import { createLogger } from '../lib/logger.js';
import { exitOnSignal } from '../lib/shutdown.js';
import { readControlPlaneConfig } from './config.js';
import { createControlPlane } from './control-plane.js';

/** `portcullis control-plane`: the admin API, the node API and the relay. */
export async function runControlPlane(env: NodeJS.ProcessEnv): Promise<void> {
  const config = readControlPlaneConfig(env, { dataDir: './data', requireNodeToken: true });
  const logger = createLogger({ level: config.logLevel, name: 'control-plane' });
  const controlPlane = await createControlPlane({ ...config, nodeToken: config.nodeToken!, logger });
  logger.info({ url: controlPlane.url }, 'control plane listening');
  if (controlPlane.firstAdminToken !== undefined) {
    process.stdout.write(`\nFirst start: platform admin token (shown once, store it now):\n  ${controlPlane.firstAdminToken}\n\n`);
  }
  exitOnSignal(logger, () => controlPlane.close(), config.shutdownDeadlineMs);
}
