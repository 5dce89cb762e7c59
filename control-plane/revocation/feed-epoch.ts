import type { Logger } from '../../lib/logger.js';
import type { Database, Queryable } from '../db/database.js';

/**
 * The outbox's identity (DESIGN "Revocation protocol", step 5). Seqs count up within one
 * history of the outbox; a database restored from a backup, a lagging replica promoted,
 * or another database put in its place starts a history whose seqs repeat ones nodes
 * already applied. Each history gets its own epoch, and nodes compare seqs only within
 * one: a node that meets a new epoch forgets what it cached and starts over.
 *
 * A new epoch is drawn when
 * - the database is not where the epoch was drawn (`portcullis_database_identity()`:
 *   a copy, a promoted replica, a point-in-time recovery), checked at start-up and each
 *   time a relay takes the lead;
 * - the outbox ends below a seq already seen in this epoch (restored in place, from a
 *   volume snapshot): by a relay that published further, or a node that applied further.
 */

/** The current epoch, as a scalar subquery: read in the same snapshot as the seqs beside it. */
export const CURRENT_EPOCH = `(SELECT value FROM settings WHERE name = 'feed_epoch')`;

/** Arbitrary constant: serialises epoch checks and renewals across instances. */
const EPOCH_LOCK = 7_301_005;

export async function currentEpoch(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ epoch: string }>(`SELECT ${CURRENT_EPOCH} AS epoch`);
  return rows[0]!.epoch;
}

/**
 * Replaces `stale` with a new epoch, unless another instance already has: concurrent
 * discoveries of the same rewind draw one epoch, not several. Returns the epoch now current.
 */
export async function renewEpoch(tx: Queryable, stale: string, logger: Logger, reason: string): Promise<string> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [EPOCH_LOCK]);
  const { rows } = await tx.query<{ value: string }>(
    `UPDATE settings SET value = replace(gen_random_uuid()::text, '-', '') WHERE name = 'feed_epoch' AND value = $1 RETURNING value`,
    [stale],
  );
  const renewed = rows[0]?.value;
  if (renewed === undefined) return currentEpoch(tx);
  await tx.query(`UPDATE settings SET value = portcullis_database_identity() WHERE name = 'feed_epoch_origin'`);
  logger.warn({ previous: stale, epoch: renewed, reason }, 'new feed epoch: every node forgets its cache and starts over');
  return renewed;
}

/** Checks that the database is where its epoch was drawn, and draws a new one if not. */
export async function confirmEpoch(db: Database, logger: Logger): Promise<string> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [EPOCH_LOCK]);
    const { rows } = await tx.query<{ epoch: string; origin: string; identity: string }>(
      `SELECT ${CURRENT_EPOCH} AS epoch, (SELECT value FROM settings WHERE name = 'feed_epoch_origin') AS origin,
              portcullis_database_identity() AS identity`,
    );
    const { epoch, origin, identity } = rows[0]!;
    if (origin === identity) return epoch;
    return renewEpoch(tx, epoch, logger, `the database moved (${origin} → ${identity}): a copy, a restore or a failover`);
  });
}
