import type { Pool } from '../../contract/node-api.js';
import { createFailureLog } from '../../lib/failure-log.js';
import type { Logger } from '../../lib/logger.js';
import type { NodeApiClient } from './node-api-client.js';

/** Keeps the node's pools and exits in step with the control plane, without restarts. */
export interface PoolRefresher {
  /** Loads pools once (failing if the control plane cannot be reached), then polls. */
  start(): Promise<void>;
  isLoaded(): boolean;
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

  async function refresh(): Promise<void> {
    const result = await api.pools(etag);
    if (result === undefined) return;
    etag = result.etag;
    apply(result.pools);
    loaded = true;
  }

  return {
    async start() {
      await refresh();
      const failures = createFailureLog(logger, {
        failing: 'pool refresh failed; keeping the current pools and retrying',
        recovered: 'pool refresh works again',
      });
      timer = setInterval(() => {
        refresh().then(
          () => failures.recovered(),
          (error: unknown) => failures.failed({ err: error }),
        );
      }, intervalMs);
      timer.unref();
    },
    isLoaded: () => loaded,
    refresh,
    close() {
      clearInterval(timer);
    },
  };
}
