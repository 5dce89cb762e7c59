import type { Pool } from '../../contract/node-api.js';
import { retryWithBackoff } from '../../lib/backoff.js';
import { createFailureLog } from '../../lib/failure-log.js';
import type { Logger } from '../../lib/logger.js';
import { NodeApiError, type NodeApiClient } from './node-api-client.js';

/**
 * Keeps the node's pools and exits in step with the control plane, without restarts: at
 * once when the feed says they changed (`pools.changed`), and by polling every
 * `intervalMs` in case the feed is down.
 */
export interface PoolRefresher {
  /**
   * Loads pools once, then polls. A node's first call to the control plane: while it is not
   * up yet, or refuses the node token (until the operator fixes it), the node waits with
   * backoff and says so once, rather than crash and restart in a loop.
   */
  start(): Promise<void>;
  isLoaded(): boolean;
  /**
   * Fetches the pools now. A call while a fetch is under way runs another right after it,
   * since the one under way may have been answered before the change it was called for.
   * Never rejects: a failure is logged, and the next call or poll tries again.
   */
  refresh(): Promise<void>;
  close(): void;
}

export interface PoolRefresherOptions {
  api: NodeApiClient;
  intervalMs: number;
  logger: Logger;
  apply(pools: Pool[]): void;
}

export function createPoolRefresher({ api, intervalMs, logger, apply }: PoolRefresherOptions): PoolRefresher {
  let etag: string | undefined;
  let loaded = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  const failures = createFailureLog(logger, {
    failing: 'pool refresh failed; keeping the current pools and retrying',
    recovered: 'pool refresh works again',
  });

  async function fetchPools(): Promise<void> {
    const result = await api.pools(etag);
    if (result === undefined) return;
    etag = result.etag;
    apply(result.pools);
    loaded = true;
  }

  function refresh(): Promise<void> {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await fetchPools();
        } while (again && !closed);
        failures.recovered();
      } catch (error) {
        failures.failed({ err: error });
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  return {
    async start() {
      await retryWithBackoff(fetchPools, {
        minDelayMs: 250,
        maxDelayMs: 5_000,
        isRetryable: (error) => error instanceof NodeApiError,
        failures: createFailureLog(logger, { failing: 'control plane not usable yet; retrying with backoff', recovered: 'control plane reached: starting' }),
        describe: (error) => ({ reason: (error as NodeApiError).status === 401 ? 'the control plane refuses NODE_TOKEN' : (error as Error).message }),
      });
      timer = setInterval(() => void refresh(), intervalMs);
      timer.unref();
    },
    isLoaded: () => loaded,
    refresh,
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
}
