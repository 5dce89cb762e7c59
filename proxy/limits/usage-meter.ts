import type { Logger } from '../../lib/logger.js';
import type { NodeApiClient } from '../sync/node-api-client.js';

/**
 * Bytes and requests per key, summed in memory and sent to the control plane in numbered
 * batches. A batch, once sent, is never changed: if the answer is lost it is sent again as
 * it was, and the control plane counts each (node, batch) once. While the control plane is
 * unreachable sealed batches wait in order (at most `maxPendingBatches`; after that new
 * traffic keeps adding into the open batch, which is bounded by the number of keys).
 */

/** Hears of payload bytes (what metering counts) from the client (in) and to it (out). */
export type ByteMeter = (bytesIn: number, bytesOut: number) => void;

interface Counts {
  teamId: string;
  bytesIn: number;
  bytesOut: number;
  requests: number;
  tunnels: number;
}

interface Batch {
  batch: number;
  entries: ({ keyId: string } & Counts)[];
}

export interface UsageMeter {
  /** Counts one proxied request or CONNECT tunnel. */
  count(keyId: string, teamId: string, kind: 'request' | 'tunnel'): void;
  /** Adds bytes: a request's when it ends, a tunnel's at every flush while it lasts. */
  addBytes(keyId: string, teamId: string, bytesIn: number, bytesOut: number): void;
  /** Seals what was recorded since the last flush and sends every pending batch. */
  flush(): Promise<void>;
  pending(): { batches: number; bytes: number };
  /** Final flush, retried until `deadlineMs`. */
  close(deadlineMs: number): Promise<void>;
}

export interface UsageMeterOptions {
  api: NodeApiClient;
  nodeId: string;
  intervalMs: number;
  maxPendingBatches: number;
  logger: Logger;
  now(): number;
  /** Called before each batch is sealed, to add bytes that are read rather than reported (open tunnels). */
  collect(): void;
}

export function createUsageMeter({ api, nodeId, intervalMs, maxPendingBatches, logger, now, collect }: UsageMeterOptions): UsageMeter {
  let open = new Map<string, Counts>();
  const sealed: Batch[] = [];
  let nextBatch = 1;
  let sending: Promise<void> | undefined;

  function seal(): void {
    collect();
    if (open.size === 0 || sealed.length >= maxPendingBatches) return;
    sealed.push({ batch: nextBatch++, entries: [...open].map(([keyId, counts]) => ({ keyId, ...counts })) });
    open = new Map();
  }

  async function sendPending(): Promise<void> {
    while (sealed.length > 0) {
      const batch = sealed[0]!;
      await api.sendUsage({ nodeId, batch: batch.batch, entries: batch.entries });
      sealed.shift();
    }
  }

  function flush(): Promise<void> {
    seal();
    if (sending === undefined) {
      sending = sendPending()
        .catch((error: unknown) => logger.debug({ err: error, pending: sealed.length }, 'usage flush failed; will retry'))
        .finally(() => {
          sending = undefined;
        });
    }
    return sending;
  }

  const timer = setInterval(() => void flush(), intervalMs);
  timer.unref();

  function countsOf(keyId: string, teamId: string): Counts {
    let counts = open.get(keyId);
    if (counts === undefined) open.set(keyId, (counts = { teamId, bytesIn: 0, bytesOut: 0, requests: 0, tunnels: 0 }));
    return counts;
  }

  return {
    count(keyId, teamId, kind) {
      const counts = countsOf(keyId, teamId);
      if (kind === 'request') counts.requests++;
      else counts.tunnels++;
    },
    addBytes(keyId, teamId, bytesIn, bytesOut) {
      const counts = countsOf(keyId, teamId);
      counts.bytesIn += bytesIn;
      counts.bytesOut += bytesOut;
    },
    flush,
    pending() {
      let bytes = 0;
      for (const batch of sealed) for (const entry of batch.entries) bytes += entry.bytesIn + entry.bytesOut;
      for (const counts of open.values()) bytes += counts.bytesIn + counts.bytesOut;
      return { batches: sealed.length + (open.size > 0 ? 1 : 0), bytes };
    },
    async close(deadlineMs) {
      clearInterval(timer);
      const end = now() + deadlineMs;
      for (;;) {
        await flush();
        if (sealed.length === 0 && open.size === 0) return;
        if (now() >= end) {
          logger.error({ pending: this.pending() }, 'usage not delivered before shutdown');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
  };
}
