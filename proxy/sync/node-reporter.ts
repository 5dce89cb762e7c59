import type { Logger } from '../../lib/logger.js';
import type { NodeApiClient } from './node-api-client.js';
import type { AppliedRevocation } from '../node.js';

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
  api: NodeApiClient;
  intervalMs: number;
  logger: Logger;
  snapshot(): {
    nodeId: string;
    region: string;
    appliedSeq: number;
    feedSilenceMs: number | null;
    openTunnels: number;
    startedAt: number;
    exitHealth: { pool: string; country: string; exits: number; healthy: number }[];
  };
  takeApplied(): AppliedRevocation[];
  /** The control plane answers with the number of live nodes in the region. */
  onRegionNodes(count: number): void;
}

const NUDGE_DELAY_MS = 20;
const MAX_UNSENT = 10_000;

export function createNodeReporter({ api, intervalMs, logger, snapshot, takeApplied, onRegionNodes }: NodeReporterOptions): NodeReporter {
  let unsent: AppliedRevocation[] = [];
  let sending: Promise<void> | undefined;
  let again = false;
  let nudgeTimer: NodeJS.Timeout | undefined;

  async function send(): Promise<void> {
    unsent = unsent.concat(takeApplied()).slice(-MAX_UNSENT);
    const batch = unsent;
    unsent = [];
    try {
      const answer = (await api.post('/internal/v1/nodes/report', {
        ...snapshot(),
        applied: batch.map((revocation) => ({ seq: revocation.seq, appliedAt: revocation.appliedAt, closedConnections: revocation.closedConnections })),
      })) as { regionNodes?: number } | undefined;
      if (typeof answer?.regionNodes === 'number') onRegionNodes(answer.regionNodes);
    } catch (error) {
      unsent = batch.concat(unsent).slice(-MAX_UNSENT);
      logger.debug({ err: error }, 'node report failed; will retry');
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
