import type { FastifyInstance } from 'fastify';
import { fail } from '../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A list, search or export: it reads many rows and renders a large answer on the
     * event loop, so it takes a slot from the heavy-call limit while it runs.
     */
    heavy?: boolean;
  }
}

export interface HeavyCallSettings {
  /** Heavy calls running at once in this process. */
  concurrency: number;
  /** Calls that may wait for a slot; one more is answered `busy` at once. */
  queue: number;
  /** How long a call waits for a slot before it is answered `busy`. */
  queueWaitMs: number;
}

export interface HeavyCallLimit {
  /** Resolves with the slot's release once one is free; rejects with `busy` when none comes. */
  acquire(): Promise<() => void>;
  stats(): { running: number; waiting: number; refused: number };
}

export interface HeavyCallLimitOptions extends HeavyCallSettings {
  onRefused?: () => void;
}

interface Waiter {
  grant(release: () => void): void;
  timer: NodeJS.Timeout;
}

/**
 * Bounds the admin API's heavy calls per process. Their row parsing and JSON rendering run
 * on the event loop the node API shares; without a bound, a flood of 500-row pages holds
 * every node-API answer behind it. The answer beyond the bound is a quick 503 `busy` with
 * Retry-After, which clients already treat as "back off and retry".
 */
export function createHeavyCallLimit({ concurrency, queue, queueWaitMs, onRefused }: HeavyCallLimitOptions): HeavyCallLimit {
  let running = 0;
  let refused = 0;
  const waiting: Waiter[] = [];

  function release(): void {
    const next = waiting.shift();
    if (next === undefined) {
      running--;
      return;
    }
    clearTimeout(next.timer);
    next.grant(once());
  }

  function refuse(): Error {
    refused++;
    onRefused?.();
    return fail('busy');
  }

  /** A release that counts only its first call: a response both finished and closed frees one slot. */
  function once(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  }

  return {
    acquire() {
      if (running < concurrency) {
        running++;
        return Promise.resolve(once());
      }
      if (waiting.length >= queue) {
        return Promise.reject(refuse());
      }
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          grant: resolve,
          timer: setTimeout(() => {
            waiting.splice(waiting.indexOf(waiter), 1);
            reject(refuse());
          }, queueWaitMs),
        };
        waiting.push(waiter);
      });
    },
    stats: () => ({ running, waiting: waiting.length, refused }),
  };
}

/**
 * Makes every route of `scope` that declares `config.heavy` take a slot before its first
 * database read, and give it back when its response is over: sent, streamed to the end, or
 * abandoned by the client.
 */
export function installHeavyCallLimit(scope: FastifyInstance, limit: HeavyCallLimit): void {
  scope.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.config.heavy !== true) return;
    const release = await limit.acquire();
    // A client that left while it waited has already closed: free the slot and do no work.
    if (reply.raw.destroyed) {
      release();
      throw fail('busy');
    }
    reply.raw.once('close', release);
  });
}
