import type { Span } from '../../lib/tracing/tracing.js';
import type { BatchVerifyResult, VerifyResult } from '../sync/node-api-client.js';

export interface VerifyBatcherOptions {
  /** `parent`: the span of the first miss in the batch that was traced, if any. */
  verifyMany(hashesHex: string[], parent: Span | undefined): Promise<BatchVerifyResult>;
  /** The span active when a miss arrives (tracing on); the call made for it is its child. */
  activeSpan?: () => Span | undefined;
  maxBatchSize: number;
  /** Calls in flight at once; misses that arrive meanwhile wait and share the next call. */
  maxConcurrentCalls: number;
  onCall(keys: number): void;
}

export interface VerifyBatcher {
  verify(hashHex: string): Promise<VerifyResult>;
}

interface Waiter {
  hash: string;
  parent: Span | undefined;
  resolve(result: VerifyResult): void;
  reject(error: unknown): void;
}

/**
 * Turns single-key cache misses into batched control plane calls. A node that starts cold,
 * or stops trusting its cache when the feed goes quiet, then asks about thousands of keys
 * in tens of calls instead of thousands.
 */
export function createVerifyBatcher(options: VerifyBatcherOptions): VerifyBatcher {
  let queue: Waiter[] = [];
  let callsInFlight = 0;
  let scheduled = false;

  function pump(): void {
    while (queue.length > 0 && callsInFlight < options.maxConcurrentCalls) {
      const batch = queue.slice(0, options.maxBatchSize);
      queue = queue.slice(batch.length);
      send(batch);
    }
  }

  function send(batch: Waiter[]): void {
    callsInFlight++;
    const hashes = [...new Set(batch.map((waiter) => waiter.hash))];
    options.onCall(hashes.length);
    options
      .verifyMany(hashes, batch.find((waiter) => waiter.parent !== undefined)?.parent)
      .then(
        ({ keys, seq, epoch }) => {
          for (const waiter of batch) waiter.resolve({ key: keys.get(waiter.hash) ?? null, seq, epoch });
        },
        (error: unknown) => {
          for (const waiter of batch) waiter.reject(error);
        },
      )
      .finally(() => {
        callsInFlight--;
        pump();
      });
  }

  return {
    verify(hash) {
      return new Promise((resolve, reject) => {
        queue.push({ hash, parent: options.activeSpan?.(), resolve, reject });
        if (queue.length >= options.maxBatchSize) pump();
        else if (!scheduled) {
          scheduled = true;
          // Misses that arrive in the same turn of the event loop share one call.
          setImmediate(() => {
            scheduled = false;
            pump();
          });
        }
      });
    },
  };
}
