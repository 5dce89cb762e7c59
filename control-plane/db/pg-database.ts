import pg from 'pg';
import { DatabaseUnavailableError, type Database, type DedicatedConnection, type Queryable, type QueryResult } from './database.js';

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
    keepAlive: true,
    application_name: options.applicationName,
    types,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});

  /** A pooled connection, or why there is none, by code rather than by message. */
  async function checkout(): Promise<pg.PoolClient> {
    try {
      return await pool.connect();
    } catch (error) {
      const everyConnectionInUse = pool.totalCount >= options.maxConnections && pool.idleCount === 0;
      throw new DatabaseUnavailableError(everyConnectionInUse ? 'database_busy' : 'database_unavailable', { cause: error });
    }
  }

  /** Runs one statement; a connection that breaks under it is `database_unavailable`. */
  async function run<Row>(client: pg.ClientBase, sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    try {
      const result = await client.query(sql, params as unknown[] | undefined);
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
    } catch (error) {
      if (error instanceof pg.DatabaseError) throw error;
      throw new DatabaseUnavailableError('database_unavailable', { cause: error });
    }
  }

  /**
   * Lends a pooled connection to `work`. While it is lent, a connection that breaks emits
   * 'error' on the client, which would crash the process without a listener; the
   * connection is then thrown away instead of going back to the pool, as it is when `work`
   * calls `discard` (its state is unknown).
   */
  async function withClient<T>(work: (client: pg.PoolClient, discard: () => void) => Promise<T>): Promise<T> {
    const client = await checkout();
    let broken = false;
    const discard = () => {
      broken = true;
    };
    client.on('error', discard);
    try {
      return await work(client, discard);
    } catch (error) {
      if (error instanceof DatabaseUnavailableError) broken = true;
      throw error;
    } finally {
      client.off('error', discard);
      client.release(broken);
    }
  }

  const query = <Row>(sql: string, params?: readonly unknown[]) => withClient((client) => run<Row>(client, sql, params));

  return {
    query,
    async exec(sql) {
      await query(sql);
    },
    async dedicated({ leaseMs }): Promise<DedicatedConnection> {
      const client = new pg.Client({
        connectionString: options.url,
        statement_timeout: Math.min(options.statementTimeoutMs, leaseMs),
        query_timeout: leaseMs,
        connectionTimeoutMillis: leaseMs,
        keepAlive: true,
        keepAliveInitialDelayMillis: leaseMs,
        // The server's half of the lease: a session that says nothing for this long (its
        // owner partitioned away or hung) is ended, and its advisory locks are released.
        options: `-c idle_session_timeout=${leaseMs}`,
        application_name: `${options.applicationName}-dedicated`,
        types,
      });
      let failed = false;
      const errorHandlers: ((error: Error) => void)[] = [];
      const fail = (error: Error) => {
        if (failed) return;
        failed = true;
        for (const handler of errorHandlers) handler(error);
        // Not awaited: over a dead link the goodbye may never be acknowledged.
        client.end().catch(() => undefined);
      };
      client.on('error', fail);
      client.on('end', () => fail(new Error('dedicated connection ended')));
      try {
        await client.connect();
      } catch (error) {
        failed = true;
        client.end().catch(() => undefined);
        throw new DatabaseUnavailableError('database_unavailable', { cause: error });
      }
      // A connection runs one query at a time and its callers may overlap (the relay drains
      // regions concurrently): queries wait their turn here rather than inside pg, which
      // deprecates queueing them.
      let turn: Promise<unknown> = Promise.resolve();
      const inTurn = <T>(run: () => Promise<T>): Promise<T> => {
        const result = turn.then(run, run);
        turn = result.catch(() => undefined);
        return result;
      };
      /** A statement that fails for any reason but the server's own answer breaks the connection. */
      const send = async (sql: string, params?: readonly unknown[]) => {
        try {
          return await inTurn(() => client.query(sql, params as unknown[] | undefined));
        } catch (error) {
          if (error instanceof pg.DatabaseError) throw error;
          fail(error as Error);
          throw new DatabaseUnavailableError('database_unavailable', { cause: error });
        }
      };
      return {
        async query<Row>(sql: string, params?: readonly unknown[]) {
          const result = await send(sql, params);
          return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
        },
        async exec(sql) {
          await send(sql);
        },
        onNotification(handler) {
          client.on('notification', (message) => handler(message.channel));
        },
        onError(handler) {
          errorHandlers.push(handler);
        },
        async close() {
          failed = true;
          client.removeAllListeners('end');
          await client.end().catch(() => undefined);
        },
      };
    },
    transaction(work) {
      return withClient(async (client, discard) => {
        const tx: Queryable = {
          query: (sql, params) => run(client, sql, params),
          async exec(sql) {
            await run(client, sql);
          },
        };
        try {
          await run(client, 'BEGIN');
          const value = await work(tx);
          await run(client, 'COMMIT');
          return value;
        } catch (error) {
          await run(client, 'ROLLBACK').catch(discard);
          throw error;
        }
      });
    },
    stats() {
      return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
    },
    close() {
      return pool.end();
    },
  };
}
