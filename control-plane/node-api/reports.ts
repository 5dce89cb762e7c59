import type { NodeReport } from '../../contract/node-api.js';
import type { Database, Queryable } from '../db/database.js';

/** Acks and the node's applied seq change together, so the status never shows one without the other. */
export async function recordNodeReport(db: Database, report: NodeReport): Promise<void> {
  await db.transaction(async (tx) => {
    await recordAcks(tx, report);
    await tx.query(
    `INSERT INTO nodes (id, region, applied_seq, feed_silence_ms, open_tunnels, started_at, last_seen_at, exit_health)
     VALUES ($1, $2, $3, $4, $5, to_timestamp($6 / 1000.0), clock_timestamp(), $7)
     ON CONFLICT (id) DO UPDATE SET region = $2, applied_seq = $3, feed_silence_ms = $4, open_tunnels = $5,
       started_at = to_timestamp($6 / 1000.0), last_seen_at = clock_timestamp(), exit_health = $7`,
    [
      report.nodeId,
      report.region,
      report.appliedSeq,
      report.feedSilenceMs === null ? null : Math.min(report.feedSilenceMs, 2_000_000_000),
      report.openTunnels,
      report.startedAt,
      JSON.stringify(report.exitHealth ?? []),
    ],
    );
  });
}

async function recordAcks(tx: Queryable, report: NodeReport): Promise<void> {
  if (report.applied.length === 0) return;
  await tx.query(
    `INSERT INTO revocation_acks (seq, node_id, region, applied_at, closed_connections)
     SELECT ack.seq, $1, $2, to_timestamp(ack.applied_at / 1000.0), ack.closed
     FROM unnest($3::bigint[], $4::float8[], $5::int[]) AS ack(seq, applied_at, closed)
     ON CONFLICT (seq, node_id) DO NOTHING`,
    [report.nodeId, report.region, report.applied.map((a) => a.seq), report.applied.map((a) => a.appliedAt), report.applied.map((a) => a.closedConnections)],
  );
}

export async function liveNodesInRegion(db: Queryable, region: string, nodeLivenessMs: number): Promise<number> {
  const { rows } = await db.query<{ count: number }>(
    `SELECT count(*) AS count FROM nodes WHERE region = $1 AND last_seen_at > clock_timestamp() - make_interval(secs => $2 / 1000.0)`,
    [region, nodeLivenessMs],
  );
  return rows[0]!.count;
}
