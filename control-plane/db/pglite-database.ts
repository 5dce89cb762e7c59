import { PGlite } from '@electric-sql/pglite';
import type { Database, Queryable, QueryResult } from './database.js';

export interface PgliteDatabaseOptions {
  /** Directory holding the data; created on first start, kept across restarts. */
  dataDir: string;
}

/**
 * The embedded default: one in-process PostgreSQL for `portcullis start` with no
 * DATABASE_URL. It has a single connection, so the two pools of a production deployment
 * share it; that is fine for a one-machine setup and the SQL stays identical.
 */
export async function createPgliteDatabase({ dataDir }: PgliteDatabaseOptions): Promise<Database> {
  const db = await PGlite.create(dataDir);
  // PGlite serialises its own calls, but a transaction must not interleave with other
  // callers' statements, so every call waits its turn here.
  let queue: Promise<unknown> = Promise.resolve();
  let waiting = 0;

  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    waiting++;
    const run = queue.then(() => {
      waiting--;
      return work();
    });
    queue = run.catch(() => undefined);
    return run;
  }

  async function run<Row>(target: Pick<PGlite, 'query'>, sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    const result = await target.query<Row>(sql, params as unknown[] | undefined);
    return { rows: result.rows, rowCount: Math.max(result.affectedRows ?? 0, result.rows.length) };
  }

  const query: Queryable['query'] = (sql, params) => exclusive(() => run(db, sql, params));
  return {
    query,
    exec: (sql) => exclusive(() => db.exec(sql).then(() => undefined)),
    transaction(work) {
      return exclusive(() =>
        db.transaction((tx) => {
          const scoped: Queryable = {
            query: (sql, params) => run(tx, sql, params),
            exec: (sql) => tx.exec(sql).then(() => undefined),
          };
          return work(scoped);
        }),
      );
    },
    // One embedded connection: the "dedicated" connection is the same one.
    async dedicated() {
      const unsubscribers: (() => void)[] = [];
      return {
        query,
        exec: (sql: string) => exclusive(() => db.exec(sql).then(() => undefined)),
        onNotification(handler: (channel: string) => void) {
          unsubscribers.push(db.onNotification((channel) => handler(channel)));
        },
        onError() {},
        async close() {
          for (const unsubscribe of unsubscribers) unsubscribe();
        },
      };
    },
    stats() {
      return { total: 1, idle: waiting === 0 ? 1 : 0, waiting };
    },
    close: () => exclusive(() => db.close()),
  };
}
