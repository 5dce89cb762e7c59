import type { Logger } from './logger.js';

/**
 * A failure that keeps happening is logged once when it starts and once when it ends,
 * with how often it happened in between: never swallowed, never logged per retry.
 */
export interface FailureLog {
  /** Logs at warn the first time after a success; counts the rest. */
  failed(details: Record<string, unknown>): void;
  /** Logs at info if anything failed since the last success. */
  recovered(details?: Record<string, unknown>): void;
  isFailing(): boolean;
}

export function createFailureLog(logger: Logger, messages: { failing: string; recovered: string }): FailureLog {
  let failures = 0;
  return {
    failed(details) {
      if (failures++ === 0) logger.warn(details, messages.failing);
    },
    recovered(details = {}) {
      if (failures === 0) return;
      logger.info({ ...details, failures }, messages.recovered);
      failures = 0;
    },
    isFailing: () => failures > 0,
  };
}
