import { createFailureLog } from '../../lib/failure-log.js';
import type { Logger } from '../../lib/logger.js';
import { CURRENT_EPOCH } from '../revocation/feed-epoch.js';
import type { Database } from './database.js';

/**
 * Deletes what has outlived its use, so the tables that grow with traffic (usage batches,
 * revocation acks, the outbox, node rows) stay the size of their retention period. Runs on
 * the relay leader only, one table after another, in small batches each found through an
 * index, so no statement holds locks or a connection for long.
 */
export interface RetentionSettings {
  outboxMs: number;
  usageBatchesMs: number;
  revocationAcksMs: number;
  /** Rows of nodes not seen for this long. */
  nodesMs: number;
  intervalMs: number;
  /** Rows one statement deletes at most. */
  batchRows: number;
}

export interface RetentionOptions {
  db: Database;
  settings: RetentionSettings;
  /** Only the relay leader deletes: one instance at a time, whatever the deployment's size. */
  isLeader(): boolean;
  /** The regions the relay publishes to: outbox rows a region has not received are kept. */
  regions: readonly string[];
  /** Nodes seen within this are live: outbox rows a live node may still fetch are kept. */
  nodeLivenessMs: number;
  logger: Logger;
}

export interface Retention {
  /** Deletes one round's worth now; resolves with the rows deleted per table. */
  run(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** Batches per table and round: a backlog is worked off over several rounds. */
const MAX_BATCHES_PER_ROUND = 100;

/** Each statement deletes up to $1 rows older than $2 milliseconds; extra parameters follow. */
export interface RetentionStatement {
  table: string;
  retentionMs: number;
  sql: string;
  params: unknown[];
}

/** The statements of one round, exported so a test can EXPLAIN them. */
export function retentionStatements({ settings, regions, nodeLivenessMs }: Pick<RetentionOptions, 'settings' | 'regions' | 'nodeLivenessMs'>): RetentionStatement[] {
  const cutoff = `clock_timestamp() - make_interval(secs => $2 / 1000.0)`;
  return [
    {
      table: 'usage_batches',
      retentionMs: settings.usageBatchesMs,
      sql: `DELETE FROM usage_batches WHERE ctid = ANY (ARRAY(
              SELECT ctid FROM usage_batches WHERE received_at < ${cutoff} ORDER BY received_at LIMIT $1))`,
      params: [],
    },
    {
      table: 'revocation_acks',
      retentionMs: settings.revocationAcksMs,
      sql: `DELETE FROM revocation_acks WHERE ctid = ANY (ARRAY(
              SELECT ctid FROM revocation_acks WHERE applied_at < ${cutoff} ORDER BY applied_at LIMIT $1))`,
      params: [],
    },
    {
      table: 'nodes',
      retentionMs: settings.nodesMs,
      sql: `DELETE FROM nodes WHERE id IN (SELECT id FROM nodes WHERE last_seen_at < ${cutoff} ORDER BY last_seen_at LIMIT $1)`,
      params: [],
    },
    {
      // Oldest seqs first; created_at grows with seq, so the old rows are a prefix. Kept
      // whatever their age: rows a region's relay cursor has not passed, rows after the
      // seq of a live node of the current epoch (it may still fetch them), and the newest
      // row (heartbeats and verify answers read the latest seq from it).
      table: 'outbox',
      retentionMs: settings.outboxMs,
      sql: `DELETE FROM outbox WHERE seq IN (
              SELECT seq FROM outbox
              WHERE seq < least(
                (SELECT max(seq) FROM outbox),
                (SELECT min(seq) FROM relay_cursors WHERE region = ANY ($3)),
                (SELECT min(applied_seq) FROM nodes
                 WHERE feed_epoch = ${CURRENT_EPOCH} AND last_seen_at > clock_timestamp() - make_interval(secs => $4 / 1000.0)) + 1
              )
              ORDER BY seq LIMIT $1)
            AND created_at < ${cutoff}`,
      params: [[...regions], nodeLivenessMs],
    },
  ];
}

export function createRetention({ db, settings, isLeader, regions, nodeLivenessMs, logger }: RetentionOptions): Retention {
  const targets = retentionStatements({ settings, regions, nodeLivenessMs });
  const failures = createFailureLog(logger, { failing: 'retention cannot delete old rows; retrying', recovered: 'retention deletes old rows again' });
  let running: Promise<Record<string, number>> | undefined;
  let closed = false;

  async function deleteOld(target: RetentionStatement): Promise<number> {
    let deleted = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_ROUND && !closed; batch++) {
      const { rowCount } = await db.query(target.sql, [settings.batchRows, target.retentionMs, ...target.params]);
      deleted += rowCount;
      if (rowCount < settings.batchRows) break;
    }
    return deleted;
  }

  async function round(): Promise<Record<string, number>> {
    const deleted: Record<string, number> = {};
    try {
      for (const target of targets) deleted[target.table] = await deleteOld(target);
      failures.recovered();
      if (Object.values(deleted).some((count) => count > 0)) logger.info({ deleted }, 'retention deleted old rows');
    } catch (error) {
      failures.failed({ err: error });
    }
    return deleted;
  }

  /** A round after the one in progress, if any: what it deletes reflects the state from now on. */
  function run(): Promise<Record<string, number>> {
    const current = (running ?? Promise.resolve()).then(round);
    running = current;
    void current.finally(() => {
      if (running === current) running = undefined;
    });
    return current;
  }

  const timer = setInterval(() => {
    if (isLeader() && running === undefined) void run();
  }, settings.intervalMs);
  timer.unref();

  return {
    run,
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}
