import { createFailureLog } from '../../lib/failure-log.js';
import type { Logger } from '../../lib/logger.js';
import { MAX_REPORTED_REVOCATIONS, type AppliedRevocation, type NodeReport, type NodeReportAnswer } from '../../contract/node-api.js';

/**
 * Tells the control plane which revocations this node has applied and when (the proof of
 * propagation), at a fixed interval and right after applying any. A report that fails is
 * merged into the next one.
 */
export interface NodeReporter {
  /** Asks for a report soon (revocations were just applied). */
  nudge(): void;
  close(): Promise<void>;
}

export interface NodeReporterOptions {
  /** Delivers a report: the node API, or a worker's primary, which reports for the whole node. */
  send(report: NodeReport): Promise<NodeReportAnswer>;
  intervalMs: number;
  logger: Logger;
  /** The node's state now: everything a report carries but the revocations applied. */
  snapshot(): Omit<NodeReport, 'applied'>;
  takeApplied(): AppliedRevocation[];
  /** The control plane answers with the number of live nodes in the region. */
  onRegionNodes(count: number): void;
}

const NUDGE_DELAY_MS = 20;

export function createNodeReporter({ send: deliver, intervalMs, logger, snapshot, takeApplied, onRegionNodes }: NodeReporterOptions): NodeReporter {
  let unsent: AppliedRevocation[] = [];
  let sending: Promise<void> | undefined;
  let again = false;
  let nudgeTimer: NodeJS.Timeout | undefined;
  const failures = createFailureLog(logger, {
    failing: 'node report failed: revocations applied here are not yet confirmed to the control plane; retrying',
    recovered: 'node reports delivered again',
  });

  async function send(): Promise<void> {
    unsent = unsent.concat(takeApplied()).slice(-MAX_REPORTED_REVOCATIONS);
    const batch = unsent;
    unsent = [];
    try {
      const answer = await deliver({ ...snapshot(), applied: batch });
      onRegionNodes(answer.regionNodes);
      failures.recovered();
    } catch (error) {
      unsent = batch.concat(unsent).slice(-MAX_REPORTED_REVOCATIONS);
      failures.failed({ err: error, unconfirmed: unsent.length });
    }
  }

  function report(): void {
    if (sending !== undefined) {
      again = true;
      return;
    }
    sending = send().finally(() => {
      sending = undefined;
      if (again) {
        again = false;
        report();
      }
    });
  }

  const timer = setInterval(report, intervalMs);
  timer.unref();
  report();

  return {
    nudge() {
      if (nudgeTimer !== undefined) return;
      nudgeTimer = setTimeout(() => {
        nudgeTimer = undefined;
        report();
      }, NUDGE_DELAY_MS);
    },
    async close() {
      clearInterval(timer);
      clearTimeout(nudgeTimer);
      await sending;
      await send();
    },
  };
}
