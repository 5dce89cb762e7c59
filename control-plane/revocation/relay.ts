import { createFailureLog, type FailureLog } from '../../lib/failure-log.js';
import type { FeedPublisher } from '../../lib/feed/bus.js';
import type { Logger } from '../../lib/logger.js';
import { FEED_CHANNEL, type FeedEvent } from '../../contract/feed.js';
import { SpanKind, TRACING_OFF, type Tracing } from '../../lib/tracing/tracing.js';
import type { Database, DedicatedConnection, Queryable } from '../db/database.js';
import { confirmEpoch, CURRENT_EPOCH, renewEpoch } from './feed-epoch.js';
import { OUTBOX_CHANNEL, OUTBOX_COLUMNS, toChangeEvent, type OutboxRow } from './outbox.js';

/**
 * The outbox relay (DESIGN "Revocation protocol", step 2). Publishes each outbox row, in
 * seq order, to every region's bus, keeping a cursor per region in PostgreSQL: a region
 * whose bus is down keeps its cursor and gets its backlog, in order, when it is back.
 * Sends a heartbeat with the latest seq to every region at a fixed interval.
 *
 * Only one instance relays at a time: the leader holds a session-level advisory lock on a
 * dedicated connection (if it dies, the lock goes with it and another instance takes
 * over). That connection is leased: cut off from the database for `leaseMs`, the leader
 * gives up and the server ends its session, so a partition cannot keep the lock from the
 * others. Events are idempotent too — nodes ignore a seq they already applied — so an
 * overlap during a takeover repeats messages but never reorders or loses them.
 */
export interface Relay {
  isLeader(): boolean;
  /** Publishes whatever is pending now (also runs on every notification and poll). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface RelayMetrics {
  published(region: string, count: number): void;
  publishFailed(region: string): void;
  lag(region: string, seqBehind: number): void;
}

export interface RelayOptions {
  db: Database;
  publishers: ReadonlyMap<string, FeedPublisher>;
  heartbeatMs: number;
  /** Fallback poll, in case a notification is lost. */
  pollMs: number;
  /** The dedicated connection's lease (see DedicatedOptions). */
  leaseMs: number;
  logger: Logger;
  metrics: RelayMetrics;
  /** A row written by a traced call is published in a span of that call's trace. */
  tracing?: Tracing;
}

/** The session-level advisory lock the leader holds (its key is also how tests find the holder in pg_locks). */
export const RELAY_LOCK = 7_301_004;
const BATCH = 500;

type EpochRow = OutboxRow & { epoch: string };

export async function createRelay({ db, publishers, heartbeatMs, pollMs, leaseMs, logger, metrics, tracing = TRACING_OFF }: RelayOptions): Promise<Relay> {
  const regions = [...publishers.keys()];
  const cursors = new Map<string, number>();
  // The furthest this process has published: an outbox found below it was rewound.
  let published = { epoch: '', seq: 0 };
  const databaseFailures = createFailureLog(logger, {
    failing: 'relay cannot use the database; retrying until it can',
    recovered: 'relay uses the database again',
  });
  const regionFailures = new Map<string, FailureLog>(
    regions.map((region) => [
      region,
      createFailureLog(logger.child({ region }), {
        failing: "relay cannot publish to the region's bus; its backlog waits",
        recovered: "relay publishes to the region's bus again",
      }),
    ]),
  );
  let connection: DedicatedConnection | undefined;
  let leader = false;
  let closed = false;
  let flushing: Promise<void> | undefined;
  let flushAgain = false;

  /**
   * The leader's own connection, which holds its lock and listens: relay queries never
   * wait in the pool behind admin traffic, such as a burst of revoke calls.
   */
  function own(): Queryable {
    if (connection === undefined) throw new Error('relay connection lost');
    return connection;
  }

  async function loadCursors(): Promise<void> {
    // A region seen for the first time starts at the current end: its nodes start empty.
    await db.query(
      `INSERT INTO relay_cursors (region, seq)
       SELECT region, (SELECT coalesce(max(seq), 0) FROM outbox) FROM unnest($1::text[]) AS region
       ON CONFLICT (region) DO NOTHING`,
      [regions],
    );
    const { rows } = await db.query<{ region: string; seq: number }>('SELECT region, seq FROM relay_cursors WHERE region = ANY($1)', [regions]);
    for (const row of rows) cursors.set(row.region, row.seq);
  }

  async function connect(): Promise<void> {
    const candidate = await db.dedicated({ leaseMs });
    candidate.onError((error) => {
      if (connection !== candidate) return;
      connection = undefined;
      if (leader) logger.warn({ err: error }, 'relay leadership lost with its database connection');
      leader = false;
    });
    candidate.onNotification((channel) => {
      if (channel === OUTBOX_CHANNEL) void flush();
    });
    try {
      await candidate.query(`LISTEN ${OUTBOX_CHANNEL}`);
    } catch (error) {
      await candidate.close();
      throw error;
    }
    connection = candidate;
  }

  /**
   * Before publishing anything as the new leader: the epoch must be this database's, and an
   * outbox that ends below what this process published before was rewound under it.
   */
  async function checkEpoch(): Promise<void> {
    const epoch = await confirmEpoch(db, logger);
    const { rows } = await own().query<{ seq: number }>('SELECT coalesce(max(seq), 0) AS seq FROM outbox');
    const latest = rows[0]!.seq;
    if (published.epoch === epoch && latest < published.seq) {
      const reason = `the outbox ends at seq ${latest}, below the ${published.seq} this relay published: it was rewound`;
      await db.transaction((tx) => renewEpoch(tx, epoch, logger, reason));
    }
    published = { epoch: '', seq: 0 };
  }

  async function claimLeadership(): Promise<void> {
    if (connection === undefined) await connect();
    if (connection === undefined || leader) return;
    const { rows } = await connection.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [RELAY_LOCK]);
    if (rows[0]?.locked === true) {
      await checkEpoch();
      await loadCursors();
      leader = true;
      logger.info({ regions }, 'relay leadership taken');
    }
  }

  function notePublished(epoch: string, seq: number): void {
    if (epoch !== published.epoch || seq > published.seq) published = { epoch, seq };
  }

  /**
   * One row to one region. A row that carries its call's trace context is published in a
   * span of that trace, and the event names that span, so each node's application of it
   * hangs below the publish to its region.
   */
  function publishRow(publisher: FeedPublisher, region: string, row: EpochRow): Promise<void> {
    const event: FeedEvent = { type: 'event', epoch: row.epoch, ...toChangeEvent(row) };
    const parent = tracing.enabled ? tracing.parentFrom(row.trace_parent ?? undefined) : undefined;
    if (parent === undefined) return publisher.publish(event);
    const span = tracing.startSpan('revocation.publish', {
      kind: SpanKind.PRODUCER,
      parent,
      attributes: { 'portcullis.region': region, 'portcullis.seq': row.seq, 'portcullis.event': row.kind, 'messaging.system': 'redis', 'messaging.destination.name': FEED_CHANNEL },
    });
    return publisher.publish({ ...event, traceparent: tracing.traceparentOf(span) } as FeedEvent).then(
      () => span.end(),
      (error: unknown) => {
        tracing.fail(span, 'publish_failed');
        span.end();
        throw error;
      },
    );
  }

  /**
   * Sends a region everything after its cursor, batch by batch, in seq order. Stops at the
   * first failed publish: that region keeps its cursor and resumes there next time.
   * Regions drain independently, so one that is down never holds up the others; regions
   * at the same cursor share one read of the outbox (`reads`, one flush's worth).
   */
  async function drainRegion(region: string, reads: Map<number, Promise<EpochRow[]>>): Promise<void> {
    const publisher = publishers.get(region)!;
    for (;;) {
      let cursor = cursors.get(region) ?? 0;
      let read = reads.get(cursor);
      if (read === undefined) {
        read = own()
          .query<EpochRow>(`SELECT ${OUTBOX_COLUMNS}, ${CURRENT_EPOCH} AS epoch FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2`, [cursor, BATCH])
          .then((result) => result.rows);
        reads.set(cursor, read);
      }
      const rows = await read;
      if (rows.length === 0) return;
      // Publishes go out back to back on one connection, which keeps them in order; the
      // cursor advances past the last one confirmed before the first failure.
      const outcomes = await Promise.allSettled(rows.map((row) => publishRow(publisher, region, row)));
      const firstFailure = outcomes.findIndex((outcome) => outcome.status === 'rejected');
      const sent = firstFailure < 0 ? rows.length : firstFailure;
      const failed = firstFailure >= 0;
      if (sent > 0) {
        cursor = rows[sent - 1]!.seq;
        notePublished(rows[0]!.epoch, cursor);
      }
      if (failed) {
        metrics.publishFailed(region);
        regionFailures.get(region)!.failed({ err: (outcomes[firstFailure] as PromiseRejectedResult).reason, cursor });
      } else {
        regionFailures.get(region)!.recovered({ cursor });
      }
      if (sent > 0) {
        cursors.set(region, cursor);
        metrics.published(region, sent);
        await own().query('UPDATE relay_cursors SET seq = $2, updated_at = clock_timestamp() WHERE region = $1', [region, cursor]);
      }
      if (failed || rows.length < BATCH) return;
    }
  }

  async function publishPending(): Promise<void> {
    const reads = new Map<number, Promise<EpochRow[]>>();
    await Promise.all(regions.map((region) => drainRegion(region, reads)));
  }

  function flush(): Promise<void> {
    if (flushing !== undefined) {
      flushAgain = true;
      return flushing;
    }
    flushing = (async () => {
      try {
        do {
          flushAgain = false;
          await claimLeadership();
          if (leader && regions.length > 0) await publishPending();
        } while (flushAgain && !closed);
        databaseFailures.recovered();
      } catch (error) {
        databaseFailures.failed({ err: error });
      } finally {
        flushing = undefined;
      }
    })();
    return flushing;
  }

  async function heartbeat(): Promise<void> {
    if (!leader) return;
    const { rows } = await own().query<{ seq: number; epoch: string }>(`SELECT coalesce(max(seq), 0) AS seq, ${CURRENT_EPOCH} AS epoch FROM outbox`);
    const { seq: latest, epoch } = rows[0]!;
    const at = Date.now();
    await Promise.all(
      regions.map(async (region) => {
        metrics.lag(region, latest - (cursors.get(region) ?? 0));
        try {
          await publishers.get(region)!.publish({ type: 'heartbeat', seq: latest, at, epoch });
          regionFailures.get(region)!.recovered();
        } catch (error) {
          metrics.publishFailed(region);
          regionFailures.get(region)!.failed({ err: error });
        }
      }),
    );
  }

  await flush();
  const pollTimer = setInterval(() => void flush(), pollMs);
  const heartbeatTimer = setInterval(() => {
    heartbeat().catch((error: unknown) => databaseFailures.failed({ err: error }));
  }, heartbeatMs);

  return {
    isLeader: () => leader,
    flush,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(pollTimer);
      clearInterval(heartbeatTimer);
      await flushing;
      await connection?.close();
      await Promise.all([...publishers.values()].map((publisher) => publisher.close()));
    },
  };
}
