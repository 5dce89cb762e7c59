import type { FailureLog } from './failure-log.js';

export interface BackoffOptions {
  /** First wait after a failure; doubled after each one, up to `maxDelayMs`. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Failures that are worth waiting out; anything else is thrown at once. */
  isRetryable(error: unknown): boolean;
  /** Told of each failure (it logs the first) and of the success after them. */
  failures: FailureLog;
  /** What the log says about a failure, in a few fields. */
  describe(error: unknown): Record<string, unknown>;
}

/**
 * Runs `work` until it succeeds, waiting longer after each retryable failure: for start-up
 * steps that need another service (a database, a control plane) that may not be up yet.
 */
export async function retryWithBackoff<T>(work: () => Promise<T>, options: BackoffOptions): Promise<T> {
  let delayMs = options.minDelayMs;
  for (;;) {
    try {
      const result = await work();
      options.failures.recovered();
      return result;
    } catch (error) {
      if (!options.isRetryable(error)) throw error;
      options.failures.failed({ ...options.describe(error), retryInMs: delayMs });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(options.maxDelayMs, delayMs * 2);
    }
  }
}
