import pg from 'pg';
import type { Database, DedicatedConnection, Queryable, QueryResult } from './database.js';

export interface PgDatabaseOptions {
  url: string;
  /** Pool size; each pool is a bulkhead, so size them separately. */
  maxConnections: number;
  /** Server-side limit for every statement run through this pool. */
  statementTimeoutMs: number;
  /** How long a caller may wait for a free connection before failing. */
  connectionTimeoutMs: number;
  applicationName: string;
}

const INT8_OID = 20;

/** bigint columns (sequence numbers, counts) come back as numbers, as they do from PGlite. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export function createPgDatabase(options: PgDatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections,
    connectionTimeoutMillis: options.connectionTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs,
    // Client-side backstop in case the server never answers (network partition).
    query_timeout: options.statementTimeoutMs + 1_000,
    application_name: options.applicationName,
    types,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});

  async function query<Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    const result = await pool.query(sql, params as unknown[] | undefined);
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
  }

  return {
    query,
    async exec(sql) {
      await pool.query(sql);
    },
    async dedicated(): Promise<DedicatedConnection> {
      const client = new pg.Client({
        connectionString: options.url,
        statement_timeout: options.statementTimeoutMs,
        application_name: `${options.applicationName}-dedicated`,
        types,
      });
      let failed = false;
      const errorHandlers: ((error: Error) => void)[] = [];
      const fail = (error: Error) => {
        if (failed) return;
        failed = true;
        for (const handler of errorHandlers) handler(error);
      };
      client.on('error', fail);
      client.on('end', () => fail(new Error('dedicated connection ended')));
      await client.connect();
      // A connection runs one query at a time and its callers may overlap (the relay drains
      // regions concurrently): queries wait their turn here rather than inside pg, which
      // deprecates queueing them.
      let turn: Promise<unknown> = Promise.resolve();
      const inTurn = <T>(run: () => Promise<T>): Promise<T> => {
        const result = turn.then(run, run);
        turn = result.catch(() => undefined);
        return result;
      };
      return {
        async query<Row>(sql: string, params?: readonly unknown[]) {
          const result = await inTurn(() => client.query(sql, params as unknown[] | undefined));
          return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
        },
        async exec(sql) {
          await inTurn(() => client.query(sql));
        },
        onNotification(handler) {
          client.on('notification', (message) => handler(message.channel));
        },
        onError(handler) {
          errorHandlers.push(handler);
        },
        async close() {
          client.removeAllListeners('end');
          await client.end().catch(() => undefined);
        },
      };
    },
    async transaction(work) {
      const client = await pool.connect();
      const tx: Queryable = {
        async query<Row>(sql: string, params?: readonly unknown[]) {
          const result = await client.query(sql, params as unknown[] | undefined);
          return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
        },
        async exec(sql) {
          await client.query(sql);
        },
      };
      let broken = false;
      try {
        await client.query('BEGIN');
        const value = await work(tx);
        await client.query('COMMIT');
        return value;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw error;
      } finally {
        client.release(broken);
      }
    },
    stats() {
      return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
    },
    close() {
      return pool.end();
    },
  };
}
