/**
 * The small database interface every query goes through. PostgreSQL (`pg`) and the
 * embedded PGlite both implement it, so each query and migration is the same SQL.
 */

export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Database extends Queryable {
  /** Runs `work` in one transaction on one connection: commit on success, rollback on throw. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Connections checked out and waiting, for metrics and bulkhead tests. */
  stats(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}
