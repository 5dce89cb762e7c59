import { SpanKind, type Span, type Tracing } from '../../lib/tracing/tracing.js';
import type { Database, Queryable } from './database.js';

/** Statements are recorded as written (parameters are never recorded), cut to this length. */
const MAX_STATEMENT_LENGTH = 2_000;

/**
 * SQL spans for a database, in the trace of whatever runs the query: the pg
 * instrumentation package patches `pg` through a CommonJS hook that an ESM process only
 * gets with a loader, so our one database interface records them instead. A query run
 * outside any trace (the relay's polling, retention) makes no span.
 */
export function traceDatabase(db: Database, tracing: Tracing, pool: string): Database {
  const attributes = (sql: string) => ({ 'db.system.name': 'postgresql', 'db.query.text': sql.slice(0, MAX_STATEMENT_LENGTH), 'portcullis.db.pool': pool });

  async function traced<T>(parent: Span | undefined, name: string, sql: string, run: () => Promise<T>): Promise<T> {
    if (parent === undefined) return run();
    const span = tracing.startSpan(name, { kind: SpanKind.CLIENT, parent, attributes: attributes(sql) });
    try {
      return await run();
    } catch (error) {
      tracing.fail(span, String((error as { code?: unknown }).code ?? 'error'));
      throw error;
    } finally {
      span.end();
    }
  }

  function queryable(inner: Queryable, parentOf: () => Span | undefined): Queryable {
    return {
      query: (sql, params) => traced(parentOf(), 'pg.query', sql, () => inner.query(sql, params)),
      exec: (sql) => traced(parentOf(), 'pg.exec', sql, () => inner.exec(sql)),
    };
  }

  return {
    ...queryable(db, () => tracing.activeSpan()),
    dedicated: (options) => db.dedicated(options),
    async transaction(work) {
      const parent = tracing.activeSpan();
      if (parent === undefined) return db.transaction(work);
      const span = tracing.startSpan('pg.transaction', { kind: SpanKind.CLIENT, parent, attributes: { 'db.system.name': 'postgresql', 'portcullis.db.pool': pool } });
      try {
        return await db.transaction((tx) => work(queryable(tx, () => span)));
      } catch (error) {
        tracing.fail(span, String((error as { code?: unknown }).code ?? 'error'));
        throw error;
      } finally {
        span.end();
      }
    },
    stats: () => db.stats(),
    close: () => db.close(),
  };
}
