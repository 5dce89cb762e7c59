import type { Logger } from './logger.js';

/**
 * For executables only (never inside a component): on SIGTERM or SIGINT, run `close`
 * (which stops accepting and drains), then exit 0. A second signal, or `close` running past
 * `deadlineMs`, forces the exit.
 */
export function exitOnSignal(logger: Logger, close: () => Promise<void>, deadlineMs: number): void {
  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    closing = true;
    logger.info({ signal, deadlineMs }, 'shutting down: draining');
    const timer = setTimeout(() => {
      logger.warn('drain deadline passed: exiting with work still open');
      process.exit(0);
    }, deadlineMs + 1_000);
    timer.unref();
    close().then(
      () => {
        logger.info('shut down cleanly');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
