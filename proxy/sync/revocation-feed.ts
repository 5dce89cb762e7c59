import { decodeFeedMessage, type FeedEvent, type FeedMessage } from '../../contract/feed.js';
import { createFailureLog } from '../../lib/failure-log.js';
import type { FeedSubscriber } from '../../lib/feed/bus.js';
import type { Logger } from '../../lib/logger.js';
import type { NodeApiClient } from './node-api-client.js';

/**
 * The node's end of the revocation protocol (DESIGN steps 3 and 5): applies events in seq
 * order, fetches what it missed from the node API when it sees a gap, a heartbeat ahead of
 * it, or a reconnection, and knows how long its feed has been silent. Seqs are compared
 * only within one epoch: when the node API names another epoch, the node starts over.
 */
export interface RevocationFeed {
  start(): Promise<void>;
  /** The highest seq applied with nothing missing below it; -1 until the first sync. */
  appliedSeq(): number;
  /** The epoch `appliedSeq` belongs to; undefined until the first sync. */
  epoch(): string | undefined;
  /**
   * Makes sure the node is in step with the node API's epoch, starting over if it names
   * another one; resolves once that check is done (or has failed).
   */
  resync(): Promise<void>;
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
  /**
   * The node API names an epoch other than the one the node was in: what the node cached
   * belongs to another history of the outbox and must go.
   */
  onNewEpoch(epoch: string): void;
  /** Retry interval for a catch-up that failed (control plane unreachable). */
  retryMs: number;
  /**
   * Silence longer than this means the feed is down: the node then polls the node API for
   * revocations until the feed speaks again.
   */
  stalenessBoundMs: number;
}

type CatchUpReason = 'gap' | 'heartbeat' | 'reconnect' | 'start' | 'silence' | 'epoch';

/** How often silence is checked: a quiet feed is noticed at most this long after the bound. */
const SILENCE_CHECK_MS = 200;

export function createRevocationFeed(options: RevocationFeedOptions): RevocationFeed {
  const { api, now, logger } = options;
  let applied = -1;
  let epoch: string | undefined;
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
  const foreign = createFailureLog(logger, {
    failing: "feed messages name another epoch than the control plane's: ignored, and not counted as the feed speaking",
    recovered: "feed messages name the control plane's epoch again",
  });

  function applyInOrder(event: FeedEvent, receivedAt: number): void {
    if (event.seq <= applied) return;
    applied = event.seq;
    options.apply(event, receivedAt);
  }

  /**
   * Starts over in `next`: with nothing cached from before, history does not concern the
   * node, only where it ends. Everything the node decided from the old epoch goes first.
   */
  function adopt(next: string, latestSeq: number): void {
    const previous = epoch;
    epoch = next;
    applied = latestSeq;
    if (previous === undefined) return;
    logger.warn({ previous, epoch: next, applied }, 'the control plane names a new feed epoch: cache forgotten, starting over');
    options.onNewEpoch(next);
  }

  async function fetchMissing(reason: CatchUpReason): Promise<void> {
    if (applied < 0) {
      const end = await api.revocationsAfter(Number.MAX_SAFE_INTEGER, 1);
      adopt(end.epoch, end.latestSeq);
      options.onCatchUp(reason, 0);
      return;
    }
    let count = 0;
    for (;;) {
      const page = await api.revocationsAfter(applied);
      if (page.epoch !== epoch) {
        adopt(page.epoch, page.latestSeq);
        options.onCatchUp('epoch', 0);
        return;
      }
      const receivedAt = now();
      for (const event of page.events) applyInOrder({ ...event, type: 'event', epoch: page.epoch }, receivedAt);
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
    const messageEpoch = decoded.value.epoch;
    if (messageEpoch !== epoch) {
      // Either the control plane moved to a new epoch (the catch-up finds out and starts
      // over) or the message comes from elsewhere, such as a relay still running on an old
      // database: it is then ignored, and says nothing about the feed being alive.
      void catchUp('epoch').then(() => {
        if (epoch !== undefined && messageEpoch !== epoch) foreign.failed({ messageEpoch, epoch });
      });
      return;
    }
    foreign.recovered();
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
    epoch: () => epoch,
    resync: () => catchUp('epoch'),
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
