import { createLogger } from '../lib/logger.js';
import { exitOnSignal } from '../lib/shutdown.js';
import { explainListenError } from '../lib/startup-error.js';
import { readExitConfig } from './config.js';
import { createExitServer } from './exit-server.js';

/** `portcullis exit`: a stand-in residential exit. */
export async function runExit(env: NodeJS.ProcessEnv): Promise<void> {
  const config = readExitConfig(env);
  const logger = createLogger({ level: config.logLevel, name: 'exit' });
  const exit = await createExitServer({
    id: config.id,
    country: config.country,
    host: config.host,
    port: config.port,
    token: config.token,
    allowPrivateDestinations: config.allowPrivateDestinations,
    logger,
  }).catch((error: unknown) => {
    throw explainListenError(error, { PORT: config.port });
  });
  logger.info({ id: exit.id, country: exit.country, url: exit.url }, 'exit listening');
  exitOnSignal(logger, () => exit.close(config.shutdownDeadlineMs), config.shutdownDeadlineMs);
}
