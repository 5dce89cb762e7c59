import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import type { Database } from './db/database.js';

/**
 * A control plane's metrics, on the registry it is given. No label carries a key, team or
 * token: label values come from small fixed sets (routes, statuses, pools, regions).
 */
export function createControlPlaneMetrics(registry: Registry, databases: Record<string, Database>, heavyCalls: () => { running: number; waiting: number }) {
  collectDefaultMetrics({ register: registry });
  const requestDuration = new Histogram({
    name: 'portcullis_http_request_duration_seconds',
    help: 'Control plane request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const poolGauge = new Gauge({
    name: 'portcullis_db_pool_connections',
    help: 'Database pool connections by pool and state',
    labelNames: ['pool', 'state'] as const,
    registers: [registry],
    collect() {
      for (const [pool, db] of Object.entries(databases)) {
        const stats = db.stats();
        this.set({ pool, state: 'total' }, stats.total);
        this.set({ pool, state: 'idle' }, stats.idle);
        this.set({ pool, state: 'waiting' }, stats.waiting);
      }
    },
  });
  new Gauge({
    name: 'portcullis_admin_heavy_calls',
    help: 'Admin list, search and export calls running and waiting for a slot',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const stats = heavyCalls();
      this.set({ state: 'running' }, stats.running);
      this.set({ state: 'waiting' }, stats.waiting);
    },
  });
  const heavyCallsRefused = new Counter({
    name: 'portcullis_admin_heavy_calls_refused_total',
    help: 'Admin list, search and export calls answered 503 busy',
    registers: [registry],
  });
  const errors = new Counter({
    name: 'portcullis_http_errors_total',
    help: 'Control plane error responses by code',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const published = new Counter({ name: 'portcullis_relay_published_total', help: 'Feed events published by region', labelNames: ['region'] as const, registers: [registry] });
  const publishFailures = new Counter({
    name: 'portcullis_relay_publish_failures_total',
    help: 'Failed publishes (region unreachable) by region',
    labelNames: ['region'] as const,
    registers: [registry],
  });
  const relayLag = new Gauge({ name: 'portcullis_relay_lag_events', help: 'Outbox events not yet published, by region', labelNames: ['region'] as const, registers: [registry] });
  const exportPageRows = new Histogram({
    name: 'portcullis_export_page_rows',
    help: 'Rows in each page a CSV export fetched: an export streams page by page, never all at once',
    labelNames: ['export'] as const,
    buckets: [10, 100, 500, 1000, 5000, 10000],
    registers: [registry],
  });
  return {
    requestDuration,
    poolGauge,
    errors,
    heavyCallRefused: () => heavyCallsRefused.inc(),
    exportPage: (kind: 'keys' | 'usage', rows: number) => exportPageRows.observe({ export: kind }, rows),
    relay: {
      published: (region: string, count: number) => published.inc({ region }, count),
      publishFailed: (region: string) => publishFailures.inc({ region }),
      lag: (region: string, behind: number) => relayLag.set({ region }, behind),
    },
  };
}

export type ControlPlaneMetrics = ReturnType<typeof createControlPlaneMetrics>;
