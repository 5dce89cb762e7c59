/**
 * The small database interface every query goes through. PostgreSQL (`pg`) and the
 * embedded PGlite both implement it, so each query and migration is the same SQL.
 */

/**
 * The database could not run a statement at all: unreachable, restarting, its session
 * killed (`database_unavailable`), or every pooled connection in use past the wait limit
 * (`database_busy`). Errors PostgreSQL itself reports keep their SQLSTATE `code`.
 */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
  constructor(
    readonly code: 'database_unavailable' | 'database_busy',
    options: { cause: unknown },
  ) {
    super(code === 'database_busy' ? 'every database connection is busy' : 'the database cannot be reached', options);
  }
}

export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/**
 * A connection of its own, outside the pools: for LISTEN and for session-level advisory
 * locks (leadership), which must stay on one connection for their whole life.
 */
export interface DedicatedConnection extends Queryable {
  onNotification(handler: (channel: string) => void): void;
  /** Called once if the connection breaks; the owner then makes a new one. */
  onError(handler: (error: Error) => void): void;
  close(): Promise<void>;
}

export interface DedicatedOptions {
  /**
   * How long the connection may go without a statement before the server ends the session
   * (and with it any session lock), and how long a statement may go unanswered before the
   * connection is given up: a partition can neither hang its owner nor let it keep a lock.
   */
  leaseMs: number;
}

export interface Database extends Queryable {
  dedicated(options: DedicatedOptions): Promise<DedicatedConnection>;
  /** Runs `work` in one transaction on one connection: commit on success, rollback on throw. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Connections checked out and waiting, for metrics and bulkhead tests. */
  stats(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}
