import type { NodeReport } from '../../contract/node-api.js';
import type { Logger } from '../../lib/logger.js';
import type { Database, Queryable } from '../db/database.js';
import { CURRENT_EPOCH, renewEpoch } from '../revocation/feed-epoch.js';

/**
 * Acks and the node's applied seq change together, so the status never shows one without
 * the other. Both count only in the epoch the node names: what it applied under another
 * epoch says nothing about this outbox's seqs.
 */
export async function recordNodeReport(db: Database, report: NodeReport, logger: Logger): Promise<void> {
  await db.transaction(async (tx) => {
    const { rows } = await tx.query<{ epoch: string; latest: number }>(`SELECT ${CURRENT_EPOCH} AS epoch, (SELECT coalesce(max(seq), 0) FROM outbox) AS latest`);
    const { epoch, latest } = rows[0]!;
    let sameEpoch = report.epoch === epoch;
    if (sameEpoch && report.appliedSeq > latest) {
      // The node applied seqs this outbox has not reached: it was rewound in place (restored
      // from a snapshot), and its next seqs would repeat ones nodes already applied.
      await renewEpoch(tx, epoch, logger, `node ${report.nodeId} applied seq ${report.appliedSeq}, past the outbox's latest ${latest}`);
      sameEpoch = false;
    }
    if (sameEpoch) await recordAcks(tx, report, epoch);
    await tx.query(
      `INSERT INTO nodes (id, region, applied_seq, feed_epoch, feed_silence_ms, open_tunnels, started_at, last_seen_at, exit_health)
       VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7 / 1000.0), clock_timestamp(), $8)
       ON CONFLICT (id) DO UPDATE SET region = $2, applied_seq = $3, feed_epoch = $4, feed_silence_ms = $5, open_tunnels = $6,
         started_at = to_timestamp($7 / 1000.0), last_seen_at = clock_timestamp(), exit_health = $8`,
      [
        report.nodeId,
        report.region,
        report.appliedSeq,
        report.epoch ?? null,
        report.feedSilenceMs === null ? null : Math.min(report.feedSilenceMs, 2_000_000_000),
        report.openTunnels,
        report.startedAt,
        JSON.stringify(report.exitHealth ?? []),
      ],
    );
  });
}

async function recordAcks(tx: Queryable, report: NodeReport, epoch: string): Promise<void> {
  if (report.applied.length === 0) return;
  await tx.query(
    `INSERT INTO revocation_acks (seq, node_id, region, applied_at, closed_connections, epoch)
     SELECT ack.seq, $1, $2, to_timestamp(ack.applied_at / 1000.0), ack.closed, $6
     FROM unnest($3::bigint[], $4::float8[], $5::int[]) AS ack(seq, applied_at, closed)
     ON CONFLICT (seq, node_id, epoch) DO NOTHING`,
    [report.nodeId, report.region, report.applied.map((a) => a.seq), report.applied.map((a) => a.appliedAt), report.applied.map((a) => a.closedConnections), epoch],
  );
}

export async function liveNodesInRegion(db: Queryable, region: string, nodeLivenessMs: number): Promise<number> {
  const { rows } = await db.query<{ count: number }>(
    `SELECT count(*) AS count FROM nodes WHERE region = $1 AND last_seen_at > clock_timestamp() - make_interval(secs => $2 / 1000.0)`,
    [region, nodeLivenessMs],
  );
  return rows[0]!.count;
}
