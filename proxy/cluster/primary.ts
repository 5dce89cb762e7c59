import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from '../../lib/logger.js';
import { createOpsServer } from '../../lib/ops-server.js';
import { exitOnSignal } from '../../lib/shutdown.js';
import { explainListenError, StartupError } from '../../lib/startup-error.js';
import type { ProxyConfig } from '../config.js';
import { createNodeApiClient } from '../sync/node-api-client.js';
import { createNodeReporter } from '../sync/node-reporter.js';
import { isOurs, type PrimaryMessage, type WorkerMessage } from './messages.js';
import { createNodeReportMerger } from './node-report-merger.js';
import { createNodeSlotLedger } from './node-slot-ledger.js';

/** A worker that dies sooner than this after its start is restarted after a growing delay, so a crash loop does not spin. */
const STEADY_MS = 10_000;
const MAX_RESTART_DELAY_MS = 5_000;

interface Place {
  index: number;
  worker: Worker;
  forkedAt: number;
  url: string | undefined;
  ready: boolean;
  reported: boolean;
  restartDelayMs: number;
}

/**
 * `portcullis proxy` with WORKERS > 1: the primary forks the workers, which share the node's
 * port (node:cluster hands connections out), replaces one that dies, serves the node's one
 * METRICS_PORT (every worker's metrics, aggregated) and reports for the whole node to the
 * control plane (proxy/cluster/node-report-merger.ts). SIGTERM drains every worker.
 */
export async function runProxyPrimary(config: ProxyConfig, logger: Logger): Promise<void> {
  const startedAt = Date.now();
  const merger = createNodeReportMerger({ nodeId: config.nodeId, region: config.region, startedAt });
  const places = new Map<number, Place>();
  const byWorker = new Map<Worker, Place>();
  const slots = createNodeSlotLedger<Place>();
  let regionNodes = 1;
  let stopping = false;
  let starting = true;
  let startFailure: ((error: Error) => void) | undefined;

  const registry = new Registry();
  const restarts = new Counter({ name: 'portcullis_proxy_worker_restarts_total', help: 'Workers that died and were replaced', registers: [registry] });
  new Gauge({
    name: 'portcullis_proxy_workers',
    help: 'Worker processes of this node, and how many of them are ready',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.set({ state: 'running' }, places.size);
      this.set({ state: 'ready' }, [...places.values()].filter((place) => place.ready).length);
    },
  });
  const aggregator = new AggregatorRegistry();

  const api = createNodeApiClient({ baseUrls: config.controlPlaneUrls, nodeToken: config.nodeToken, timeoutMs: config.verifyTimeoutMs, logger });
  // Created once every worker has reported: a report before that would say the node applied nothing.
  let reporter: ReturnType<typeof createNodeReporter> | undefined;

  function fork(index: number, restartDelayMs: number): void {
    const worker = cluster.fork();
    const place: Place = { index, worker, forkedAt: Date.now(), url: undefined, ready: false, reported: false, restartDelayMs };
    places.set(index, place);
    byWorker.set(worker, place);
    merger.workerStarted(index);
    worker.on('message', (message: unknown) => {
      if (isOurs<WorkerMessage>(message)) onMessage(place, message);
    });
  }

  const tell = (place: Place, message: PrimaryMessage) => {
    if (place.worker.isConnected()) place.worker.send(message);
  };

  function onMessage(place: Place, message: WorkerMessage): void {
    if (message.type === 'portcullis:hello') return tell(place, { type: 'portcullis:start', index: place.index, nodeId: config.nodeId });
    if (message.type === 'portcullis:slot') return tell(place, { type: 'portcullis:slot-answer', id: message.id, granted: slots.acquire(place, message.keyId, message.perNode) });
    if (message.type === 'portcullis:slot-release') return slots.release(place, message.keyId);
    if (message.type === 'portcullis:state') {
      place.url = message.url;
      place.ready = message.ready;
      return;
    }
    place.reported = true;
    if (merger.workerReported(place.index, message.report)) reporter?.nudge();
    // Each worker keeps its share of regional limits while Redis is down: the region's nodes times this node's workers.
    tell(place, { type: 'portcullis:answer', id: message.id, regionNodes: regionNodes * Math.max(1, merger.liveWorkers()) });
  }

  cluster.on('exit', (worker, code, signal) => {
    const place = byWorker.get(worker);
    byWorker.delete(worker);
    if (place !== undefined) slots.workerGone(place);
    if (place === undefined || places.get(place.index) !== place) return;
    places.delete(place.index);
    if (merger.workerGone(place.index)) reporter?.nudge();
    if (stopping) return;
    if (starting) {
      startFailure?.(new StartupError(`proxy worker ${place.index} exited (${code ?? signal}) before it was listening; the node does not start`));
      return;
    }
    const lived = Date.now() - place.forkedAt;
    const delay = lived < STEADY_MS ? Math.min(MAX_RESTART_DELAY_MS, Math.max(100, place.restartDelayMs * 2)) : 0;
    restarts.inc();
    logger.error({ worker: place.index, workerPid: worker.process.pid, code, signal, livedMs: lived, restartInMs: delay }, 'proxy worker died: starting another in its place');
    setTimeout(() => {
      if (!stopping) fork(place.index, delay);
    }, delay).unref();
  });

  for (let index = 0; index < config.workers; index++) fork(index, 0);
  const allListening = () => places.size === config.workers && [...places.values()].every((place) => place.url !== undefined && place.reported);
  await new Promise<void>((resolve, reject) => {
    startFailure = reject;
    const check = setInterval(() => {
      if (!allListening()) return;
      clearInterval(check);
      resolve();
    }, 20);
  }).catch(async (error: unknown) => {
    stopping = true;
    for (const place of places.values()) place.worker.process.kill('SIGKILL');
    throw error;
  });
  starting = false;

  reporter = createNodeReporter({
    send: (report) => api.report(report),
    intervalMs: config.reportIntervalMs,
    logger,
    snapshot: merger.snapshot,
    takeApplied: merger.takeApplied,
    onRegionNodes: (count) => {
      regionNodes = Math.max(1, count);
    },
  });
  const ops = await createOpsServer({
    host: config.host,
    port: config.metricsPort,
    registry: {
      contentType: aggregator.contentType,
      metrics: async () => `${await aggregator.clusterMetrics()}\n${await registry.metrics()}`,
    },
    isReady: () => !stopping && places.size === config.workers && [...places.values()].every((place) => place.ready),
  }).catch(async (error: unknown) => {
    stopping = true;
    for (const place of places.values()) place.worker.process.kill('SIGKILL');
    throw explainListenError(error, { PORT: config.port, METRICS_PORT: config.metricsPort });
  });
  const url = places.get(0)!.url!;
  logger.info({ url, region: config.region, nodeId: config.nodeId, metricsPort: ops.port, workers: config.workers }, 'proxy node listening');

  exitOnSignal(
    logger,
    async () => {
      stopping = true;
      const exits = [...places.values()].map(
        (place) =>
          new Promise<void>((resolve) => {
            if (place.worker.isDead()) return resolve();
            place.worker.once('exit', () => resolve());
            tell(place, { type: 'portcullis:drain' });
          }),
      );
      // A worker past the deadline is stopped outright, before the primary's own deadline ends it all.
      const overdue = setTimeout(() => {
        for (const place of places.values()) if (!place.worker.isDead()) place.worker.process.kill('SIGKILL');
      }, config.shutdownDeadlineMs + 500);
      await Promise.all(exits);
      clearTimeout(overdue);
      await reporter?.close();
      await ops.close();
    },
    config.shutdownDeadlineMs,
  );
}
