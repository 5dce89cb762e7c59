import { MAX_REPORTED_REVOCATIONS, type AppliedRevocation, type NodeReport } from '../../contract/node-api.js';

/**
 * One node report from the reports of its workers (WORKERS > 1). A revocation counts as
 * applied on the node only once every live worker has applied it: each worker reports the
 * seq it applied everything up to, in its epoch, and the node acknowledges seq S once every
 * live worker names the same epoch and a seq of at least S. A worker that started after S
 * never saw it, but it holds nothing S could be about (it verified every key after S), so
 * its seq covers S as well as an explicit acknowledgement would. The node's applied seq is
 * the lowest of its workers'; while they disagree on the epoch the node names none, and so
 * proves nothing, rather than something one worker has not done.
 */
export interface NodeReportMerger {
  /** A worker was forked: until it reports, it has applied nothing. */
  workerStarted(worker: number): void;
  /** A worker's report; returns true when revocations became applied on the whole node. */
  workerReported(worker: number, report: NodeReport): boolean;
  /** A worker exited: it holds no connections any more, so it no longer holds back any acknowledgement. */
  workerGone(worker: number): boolean;
  liveWorkers(): number;
  /** The node's state now, for its report. */
  snapshot(): Omit<NodeReport, 'applied'>;
  /** Revocations applied by every worker since the last call. */
  takeApplied(): AppliedRevocation[];
}

export interface NodeReportMergerOptions {
  nodeId: string;
  region: string;
  startedAt: number;
}

interface WorkerState {
  latest: NodeReport | undefined;
}

interface PendingAck {
  epoch: string;
  appliedAt: number;
  closedConnections: number;
}

export function createNodeReportMerger({ nodeId, region, startedAt }: NodeReportMergerOptions): NodeReportMerger {
  const workers = new Map<number, WorkerState>();
  // Acknowledged by some worker, waiting for the others; by seq.
  const pending = new Map<number, PendingAck>();
  let complete: AppliedRevocation[] = [];
  // What the workers last agreed on: still true of a node whose workers have all exited (it serves nothing).
  let lastAgreed: { epoch: string; appliedSeq: number } | undefined;

  /** The epoch and the lowest seq every live worker has applied; undefined while any has not reported or they disagree. */
  function common(): { epoch: string; appliedSeq: number } | undefined {
    if (workers.size === 0) return lastAgreed;
    let epoch: string | undefined;
    let appliedSeq = Number.MAX_SAFE_INTEGER;
    for (const { latest } of workers.values()) {
      if (latest?.epoch === undefined) return undefined;
      if (epoch !== undefined && latest.epoch !== epoch) return undefined;
      epoch = latest.epoch;
      appliedSeq = Math.min(appliedSeq, latest.appliedSeq);
    }
    if (epoch === undefined) return undefined;
    lastAgreed = { epoch, appliedSeq };
    return lastAgreed;
  }

  function settle(): boolean {
    const agreed = common();
    if (agreed === undefined) return false;
    let settled = false;
    for (const [seq, ack] of pending) {
      // Seqs of another epoch belong to another history of the outbox: they prove nothing now.
      if (ack.epoch !== agreed.epoch) pending.delete(seq);
      else if (seq <= agreed.appliedSeq) {
        pending.delete(seq);
        if (complete.length < MAX_REPORTED_REVOCATIONS) complete.push({ seq, appliedAt: ack.appliedAt, closedConnections: ack.closedConnections });
        settled = true;
      }
    }
    return settled;
  }

  return {
    workerStarted(worker) {
      workers.set(worker, { latest: undefined });
    },
    workerReported(worker, report) {
      const state = workers.get(worker);
      if (state === undefined) return false;
      state.latest = report;
      if (report.epoch !== undefined) {
        for (const applied of report.applied) {
          const ack = pending.get(applied.seq);
          if (ack === undefined || ack.epoch !== report.epoch) {
            pending.set(applied.seq, { epoch: report.epoch, appliedAt: applied.appliedAt, closedConnections: applied.closedConnections });
          } else {
            // The node applied it when its last worker did; it closed what all of them closed.
            ack.appliedAt = Math.max(ack.appliedAt, applied.appliedAt);
            ack.closedConnections += applied.closedConnections;
          }
        }
      }
      return settle();
    },
    workerGone(worker) {
      workers.delete(worker);
      return settle();
    },
    liveWorkers: () => workers.size,
    snapshot() {
      const agreed = common();
      const reports = [...workers.entries()].sort(([a], [b]) => a - b).flatMap(([, { latest }]) => (latest === undefined ? [] : [latest]));
      const silences = reports.map((report) => report.feedSilenceMs);
      const exitHealth = reports[0]?.exitHealth;
      return {
        nodeId,
        region,
        appliedSeq: agreed?.appliedSeq ?? -1,
        ...(agreed !== undefined && { epoch: agreed.epoch }),
        feedSilenceMs: silences.length === 0 || silences.includes(null) ? null : Math.max(...(silences as number[])),
        openTunnels: reports.reduce((sum, report) => sum + report.openTunnels, 0),
        startedAt,
        ...(exitHealth !== undefined && { exitHealth }),
      };
    },
    takeApplied() {
      const taken = complete;
      complete = [];
      return taken;
    },
  };
}
