import { decodeFeedMessage, type FeedEvent, type FeedMessage } from '../../contract/feed.js';
import { createFailureLog } from '../../lib/failure-log.js';
import type { FeedSubscriber } from '../../lib/feed/bus.js';
import type { Logger } from '../../lib/logger.js';
import type { NodeApiClient } from './node-api-client.js';

/**
 * The node's end of the revocation protocol (DESIGN step 3): applies events in seq order,
 * fetches what it missed from the node API when it sees a gap, a heartbeat ahead of it, or
 * a reconnection, and knows how long its feed has been silent.
 */
export interface RevocationFeed {
  start(): Promise<void>;
  /** The highest seq applied with nothing missing below it; -1 until the first sync. */
  appliedSeq(): number;
  /** Milliseconds since the feed last said anything (event or heartbeat). */
  silenceMs(): number;
  /** Fetches and applies everything after the applied seq now. */
  catchUp(): Promise<void>;
  close(): Promise<void>;
}

export interface RevocationFeedOptions {
  subscriber: FeedSubscriber;
  api: NodeApiClient;
  apply(event: FeedEvent, receivedAt: number): void;
  now(): number;
  logger: Logger;
  onCatchUp(reason: CatchUpReason, events: number): void;
  /** Retry interval for a catch-up that failed (control plane unreachable). */
  retryMs: number;
  /**
   * Silence longer than this means the feed is down: the node then polls the node API for
   * revocations until the feed speaks again.
   */
  stalenessBoundMs: number;
}

type CatchUpReason = 'gap' | 'heartbeat' | 'reconnect' | 'start' | 'silence';

/** How often silence is checked: a quiet feed is noticed at most this long after the bound. */
const SILENCE_CHECK_MS = 200;

export function createRevocationFeed(options: RevocationFeedOptions): RevocationFeed {
  const { api, now, logger } = options;
  let applied = -1;
  let lastHeardAt = -Infinity;
  let running: Promise<void> | undefined;
  let again = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  // Operators hear of changes of state once, not of every retry.
  let stale = false;
  const catchUpFailures = createFailureLog(logger, {
    failing: 'revocation catch-up failed; retrying until it works',
    recovered: 'revocation catch-up works again',
  });
  const refused = createFailureLog(logger, {
    failing: 'feed message breaks the contract: ignored, and not counted as the feed speaking',
    recovered: 'feed messages match the contract again',
  });

  function applyInOrder(event: FeedEvent, receivedAt: number): void {
    if (event.seq <= applied) return;
    applied = event.seq;
    options.apply(event, receivedAt);
  }

  async function fetchMissing(reason: CatchUpReason): Promise<void> {
    if (applied < 0) {
      // A starting node has nothing cached, so history does not concern it: only where it ends.
      applied = (await api.revocationsAfter(Number.MAX_SAFE_INTEGER, 1)).latestSeq;
      options.onCatchUp(reason, 0);
      return;
    }
    let count = 0;
    for (;;) {
      const page = await api.revocationsAfter(applied);
      const receivedAt = now();
      for (const event of page.events) applyInOrder({ ...event, type: 'event' }, receivedAt);
      count += page.events.length;
      if (page.events.length === 0 || applied >= page.latestSeq) break;
    }
    options.onCatchUp(reason, count);
  }

  /** One catch-up at a time; a request during one runs another right after it. */
  function catchUp(reason: CatchUpReason): Promise<void> {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await fetchMissing(reason);
        } while (again && !closed);
        catchUpFailures.recovered({ applied });
      } catch (error) {
        catchUpFailures.failed({ err: error, applied });
        if (!closed) {
          clearTimeout(retryTimer);
          retryTimer = setTimeout(() => void catchUp(reason), options.retryMs);
        }
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  function onText(text: string): void {
    const decoded = decodeFeedMessage(text);
    if (!decoded.ok) {
      // An unreadable message is no sign of life: if the feed says nothing else, the node
      // stops trusting its cache at the staleness bound, as for a silent feed.
      refused.failed({ problem: decoded.problem });
      return;
    }
    refused.recovered();
    onMessage(decoded.value);
  }

  function onMessage(message: FeedMessage): void {
    const receivedAt = now();
    lastHeardAt = receivedAt;
    if (stale) {
      stale = false;
      logger.info({ applied }, 'revocation feed speaks again');
    }
    if (message.type === 'heartbeat') {
      if (message.seq > applied) void catchUp('heartbeat');
      return;
    }
    if (applied >= 0 && message.seq === applied + 1 && running === undefined) {
      applyInOrder(message, receivedAt);
      return;
    }
    if (message.seq > applied) void catchUp('gap');
  }

  let silenceTimer: NodeJS.Timeout | undefined;

  return {
    async start() {
      silenceTimer = setInterval(() => {
        const silenceMs = now() - lastHeardAt;
        if (silenceMs <= options.stalenessBoundMs) return;
        if (!stale) {
          stale = true;
          logger.warn(
            { silenceMs: Number.isFinite(silenceMs) ? silenceMs : null, stalenessBoundMs: options.stalenessBoundMs },
            'revocation feed silent past the staleness bound: cached keys are re-verified and revocations polled from the control plane',
          );
        }
        void catchUp('silence');
      }, SILENCE_CHECK_MS);
      silenceTimer.unref();
      await options.subscriber.start({
        message: onText,
        connected: () => {
          lastHeardAt = now();
          void catchUp('reconnect');
        },
        disconnected: () => {},
      });
      await catchUp('start');
    },
    appliedSeq: () => applied,
    silenceMs: () => now() - lastHeardAt,
    catchUp: () => catchUp('gap'),
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      clearInterval(silenceTimer);
      await options.subscriber.close();
    },
  };
}
