import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A proxy node's metrics, on a registry of its own. No label carries a key or team:
 * label values come from small fixed sets (outcome codes, regions).
 */
/** Readings taken when metrics are scraped. */
export interface NodeState {
  silenceMs(): number;
  appliedSeq(): number;
  pendingUsage(): { batches: number; bytes: number };
}

/**
 * Counts by one label value with each labelled series looked up once, not per request
 * (prom-client hashes the label object on every `inc({...})`).
 */
export function countsBy<L extends string>(counter: Counter<L>, label: L): (value: string) => void {
  const series = new Map<string, Counter.Internal>();
  return (value) => {
    let found = series.get(value);
    if (found === undefined) series.set(value, (found = counter.labels({ [label]: value } as Partial<Record<L, string>>)));
    found.inc();
  };
}

export function createProxyMetrics(state: NodeState) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({ name: 'portcullis_proxy_requests_total', help: 'Plain HTTP requests by outcome code', labelNames: ['outcome'] as const, registers }),
    tunnels: new Counter({ name: 'portcullis_proxy_tunnels_total', help: 'CONNECT tunnels by outcome code', labelNames: ['outcome'] as const, registers }),
    openTunnels: new Gauge({ name: 'portcullis_proxy_open_tunnels', help: 'CONNECT tunnels open now', registers }),
    authCache: new Counter({ name: 'portcullis_proxy_auth_cache_total', help: 'Key cache lookups by result', labelNames: ['result'] as const, registers }),
    verifyDuration: new Histogram({
      name: 'portcullis_proxy_verify_duration_seconds',
      help: 'Control plane key verification latency',
      labelNames: ['outcome'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    verifyBatchKeys: new Histogram({
      name: 'portcullis_proxy_verify_batch_keys',
      help: 'Keys asked about per control plane verify call',
      buckets: [1, 2, 5, 10, 20, 50, 100],
      registers,
    }),
    bytes: new Counter({ name: 'portcullis_proxy_bytes_total', help: 'Bytes between clients and this node', labelNames: ['direction'] as const, registers }),
    exitFailures: new Counter({ name: 'portcullis_proxy_exit_failures_total', help: 'Exits that could not be reached', registers }),
    catchUps: new Counter({
      name: 'portcullis_proxy_feed_catch_ups_total',
      help: 'Revocation catch-ups from the node API that found missed events, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    feedSilence: new Gauge({
      name: 'portcullis_proxy_feed_silence_seconds',
      help: 'Time since the revocation feed last said anything',
      registers,
      // Across a node's workers, the one that has heard least.
      aggregator: 'max',
      collect() {
        const silence = state.silenceMs();
        this.set(Number.isFinite(silence) ? silence / 1000 : -1);
      },
    }),
    appliedSeq: new Gauge({
      name: 'portcullis_proxy_applied_seq',
      help: 'Highest revocation seq applied',
      registers,
      // A node has applied what every one of its workers has.
      aggregator: 'min',
      collect() {
        this.set(state.appliedSeq());
      },
    }),
    propagationDelay: new Histogram({
      name: 'portcullis_proxy_revocation_delay_seconds',
      help: 'From revocation commit to this node applying it',
      labelNames: ['region'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    usagePendingBytes: new Gauge({
      name: 'portcullis_proxy_usage_pending_bytes',
      help: 'Metered traffic not yet delivered to the control plane',
      registers,
      collect() {
        this.set(state.pendingUsage().bytes);
      },
    }),
    usagePendingBatches: new Gauge({
      name: 'portcullis_proxy_usage_pending_batches',
      help: 'Usage batches waiting for the control plane',
      registers,
      collect() {
        this.set(state.pendingUsage().batches);
      },
    }),
    limiterMode: new Gauge({ name: 'portcullis_proxy_rate_limiter_redis', help: '1 while rate limits are shared through Redis, 0 while local', registers, aggregator: 'min' }),
    limitDecisions: new Counter({
      name: 'portcullis_proxy_limit_decisions_total',
      help: 'Rate, concurrency and quota decisions by result',
      labelNames: ['result'] as const,
      registers,
    }),
    failedOpen: new Counter({ name: 'portcullis_proxy_auth_failed_open_total', help: 'Requests let through on a stale decision because FAIL_OPEN is set', registers }),
  };
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;

