import t from 'tap';
import type { NodeReport } from '../../contract/node-api.js';
import { createNodeReportMerger } from '../../proxy/cluster/node-report-merger.js';

const report = (appliedSeq: number, epoch: string | undefined, applied: NodeReport['applied'] = [], extra: Partial<NodeReport> = {}): NodeReport => ({
  nodeId: 'worker-view',
  region: 'eu',
  appliedSeq,
  ...(epoch !== undefined && { epoch }),
  feedSilenceMs: 10,
  openTunnels: 1,
  startedAt: 0,
  applied,
  ...extra,
});

t.test('a revocation is acknowledged for the node once every live worker applied it', async (t) => {
  const merger = createNodeReportMerger({ nodeId: 'node-a', region: 'eu', startedAt: 5 });
  merger.workerStarted(0);
  merger.workerStarted(1);
  t.equal(merger.workerReported(0, report(7, 'E', [{ seq: 7, appliedAt: 100, closedConnections: 2 }])), false, 'one worker of two: not yet');
  t.same(merger.snapshot().appliedSeq, -1, 'the node names no seq before every worker reported');
  t.equal(merger.workerReported(1, report(6, 'E')), false, 'the other is behind');
  t.same({ appliedSeq: merger.snapshot().appliedSeq, epoch: merger.snapshot().epoch }, { appliedSeq: 6, epoch: 'E' }, 'the node has applied what both have');
  t.equal(merger.workerReported(1, report(7, 'E', [{ seq: 7, appliedAt: 130, closedConnections: 3 }])), true, 'both: applied on the node');
  t.same(merger.takeApplied(), [{ seq: 7, appliedAt: 130, closedConnections: 5 }], 'when the last worker applied it, with the connections both closed');
  t.same(merger.takeApplied(), [], 'taken once');
  t.match(merger.snapshot(), { nodeId: 'node-a', region: 'eu', startedAt: 5, openTunnels: 2, feedSilenceMs: 10 });
});

t.test('a worker that started after the revocation covers it by its seq; a dead one holds nothing back', async (t) => {
  const merger = createNodeReportMerger({ nodeId: 'node-a', region: 'eu', startedAt: 0 });
  merger.workerStarted(0);
  merger.workerStarted(1);
  merger.workerReported(0, report(3, 'E'));
  merger.workerReported(1, report(3, 'E'));
  merger.workerReported(0, report(4, 'E', [{ seq: 4, appliedAt: 50, closedConnections: 1 }]));
  // Worker 1 dies before applying 4; its replacement starts past it.
  t.equal(merger.workerGone(1), true, 'the only worker left has applied it');
  t.same(merger.takeApplied(), [{ seq: 4, appliedAt: 50, closedConnections: 1 }]);
  merger.workerStarted(1);
  t.equal(merger.snapshot().appliedSeq, -1, 'a new worker that has not reported holds the node back');
  merger.workerReported(0, report(5, 'E', [{ seq: 5, appliedAt: 60, closedConnections: 0 }]));
  t.equal(merger.workerReported(1, report(5, 'E')), true, 'a replacement that adopted seq 5 at start covers it');
  t.same(merger.takeApplied().map((ack) => ack.seq), [5]);
});

t.test('workers in different epochs prove nothing; acknowledgements of an old epoch are dropped', async (t) => {
  const merger = createNodeReportMerger({ nodeId: 'node-a', region: 'eu', startedAt: 0 });
  merger.workerStarted(0);
  merger.workerStarted(1);
  merger.workerReported(0, report(9, 'OLD', [{ seq: 9, appliedAt: 1, closedConnections: 0 }]));
  t.equal(merger.workerReported(1, report(2, 'NEW')), false);
  t.same(merger.snapshot().appliedSeq, -1, 'no seq while they disagree');
  t.notOk('epoch' in merger.snapshot(), 'and no epoch');
  merger.workerReported(0, report(2, 'NEW'));
  t.same({ appliedSeq: merger.snapshot().appliedSeq, epoch: merger.snapshot().epoch }, { appliedSeq: 2, epoch: 'NEW' });
  t.same(merger.takeApplied(), [], 'seq 9 of the old epoch is never acknowledged in the new one');
  merger.workerGone(0);
  merger.workerGone(1);
  t.same({ appliedSeq: merger.snapshot().appliedSeq, epoch: merger.snapshot().epoch }, { appliedSeq: 2, epoch: 'NEW' }, 'with every worker gone, what they last agreed on');
});
