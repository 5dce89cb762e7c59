import { randomBytes } from 'node:crypto';
import { MAX_USAGE_ENTRIES, type UsageBatch } from '../../contract/node-api.js';
import { createFailureLog } from '../../lib/failure-log.js';
import type { Logger } from '../../lib/logger.js';
import type { NodeApiClient } from '../sync/node-api-client.js';

/**
 * Bytes and requests per key, summed in memory and sent to the control plane in numbered
 * batches. A batch, once sent, is never changed: if the answer is lost it is sent again as
 * it was, and the control plane counts each (node, boot, batch) once. The boot id is new in
 * every process, so a node restarted under the same NODE_ID is not taken for a retry of
 * its former life. While the control plane is unreachable sealed batches wait in order (at
 * most `maxPendingBatches`; after that new traffic keeps adding into the open batch, which
 * is bounded by the number of keys). What a process killed outright had not yet delivered
 * is lost: at most one flush interval.
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
  const boot = randomBytes(12).toString('base64url');
  let open = new Map<string, Counts>();
  const sealed: UsageBatch[] = [];
  let nextBatch = 1;
  let sending: Promise<void> | undefined;
  const failures = createFailureLog(logger, {
    failing: 'usage not delivered to the control plane; batches wait in order and are retried',
    recovered: 'usage delivered again',
  });

  function seal(): void {
    collect();
    if (open.size === 0 || sealed.length >= maxPendingBatches) return;
    // Many busy keys make several batches, each within what the control plane takes at once.
    const entries = [...open].map(([keyId, counts]) => ({ keyId, ...counts }));
    for (let i = 0; i < entries.length; i += MAX_USAGE_ENTRIES) {
      sealed.push({ nodeId, boot, batch: nextBatch++, entries: entries.slice(i, i + MAX_USAGE_ENTRIES) });
    }
    open = new Map();
  }

  async function sendPending(): Promise<void> {
    while (sealed.length > 0) {
      await api.sendUsage(sealed[0]!);
      sealed.shift();
    }
  }

  function flush(): Promise<void> {
    seal();
    if (sending === undefined) {
      sending = sendPending()
        .then(
          () => failures.recovered(),
          (error: unknown) => failures.failed({ err: error, pendingBatches: sealed.length }),
        )
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
