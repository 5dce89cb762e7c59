import { AggregatorRegistry } from 'prom-client';
import type { NodeReport, NodeReportAnswer } from '../../contract/node-api.js';
import { createRedisSubscriber } from '../../lib/feed/redis-bus.js';
import type { Logger } from '../../lib/logger.js';
import type { Tracing } from '../../lib/tracing/tracing.js';
import { explainListenError } from '../../lib/startup-error.js';
import type { ProxyConfig } from '../config.js';
import type { NodeSlots } from '../limits/concurrency-limiter.js';
import { startProxy } from '../start-proxy.js';
import { isOurs, type PrimaryMessage, type WorkerMessage } from './messages.js';

/** A report the primary has not answered in this long failed: the reporter merges it into the next. */
const ANSWER_TIMEOUT_MS = 5_000;
const READY_POLL_MS = 100;

/**
 * A worker of a node with several (WORKERS > 1): a whole node of its own, with its cache and
 * feed subscription, serving the port the primary shares out, and reporting to the primary
 * rather than to the control plane. Its metrics are read by the primary's aggregator.
 */
export async function runProxyWorker(config: ProxyConfig, baseLogger: Logger, tracing: Tracing): Promise<void> {
  const send = (message: WorkerMessage) => process.send!(message);
  const answers = new Map<number, { resolve(answer: NodeReportAnswer): void; reject(error: Error): void; timer: NodeJS.Timeout }>();
  let nextReport = 0;
  // Each slot asked for, until the primary answers; `resolve` is gone once the worker gave up waiting.
  const slotRequests = new Map<number, { keyId: string; resolve: ((granted: boolean) => void) | undefined; timer: NodeJS.Timeout }>();
  let nextSlot = 0;
  let drain: (reason: string) => void = () => {};
  const started = new Promise<{ index: number; nodeId: string }>((resolve) => {
    process.on('message', (message: unknown) => {
      if (!isOurs<PrimaryMessage>(message)) return;
      if (message.type === 'portcullis:start') resolve(message);
      else if (message.type === 'portcullis:drain') drain('the node is shutting down');
      else if (message.type === 'portcullis:answer') {
        const waiting = answers.get(message.id);
        answers.delete(message.id);
        clearTimeout(waiting?.timer);
        waiting?.resolve({ regionNodes: message.regionNodes });
      } else if (message.type === 'portcullis:slot-answer') {
        const request = slotRequests.get(message.id);
        slotRequests.delete(message.id);
        if (request === undefined) return;
        clearTimeout(request.timer);
        if (request.resolve !== undefined) request.resolve(message.granted);
        // Granted after we gave up waiting and refused the connection: hand it straight back.
        else if (message.granted) send({ type: 'portcullis:slot-release', keyId: request.keyId });
      }
    });
  });
  send({ type: 'portcullis:hello' });
  const { index, nodeId } = await started;
  const logger = baseLogger.child({ worker: index });

  const report = (body: NodeReport) =>
    new Promise<NodeReportAnswer>((resolve, reject) => {
      const id = nextReport++;
      const timer = setTimeout(() => {
        answers.delete(id);
        reject(new Error('the node primary did not answer the report'));
      }, ANSWER_TIMEOUT_MS);
      answers.set(id, { resolve, reject, timer });
      send({ type: 'portcullis:report', id, report: body });
    });
  const nodeSlots: NodeSlots = {
    acquire: (keyId, perNode) =>
      new Promise<boolean>((resolve) => {
        const id = nextSlot++;
        const request = {
          keyId,
          resolve: resolve as ((granted: boolean) => void) | undefined,
          timer: setTimeout(() => {
            request.resolve = undefined;
            resolve(false);
          }, ANSWER_TIMEOUT_MS),
        };
        slotRequests.set(id, request);
        send({ type: 'portcullis:slot', id, keyId, perNode });
      }),
    // Without the channel the primary is gone, and the node's counts with it.
    release: (keyId) => {
      if (process.connected) send({ type: 'portcullis:slot-release', keyId });
    },
  };
  const running = await startProxy(
    { ...config, nodeId },
    { ...config, subscriber: createRedisSubscriber({ url: config.redisUrl, logger }) },
    logger,
    tracing,
    { index, workers: config.workers, nodeSlots, report },
  ).catch((error: unknown) => {
    throw explainListenError(error, { PORT: config.port });
  });
  // Answers the primary's metric requests with this worker's registry.
  AggregatorRegistry.setRegistries([running.node.metrics.registry]);
  new AggregatorRegistry();

  let ready = running.node.isReady();
  send({ type: 'portcullis:state', url: running.node.url, ready });
  const readiness = setInterval(() => {
    if (running.node.isReady() === ready) return;
    ready = !ready;
    send({ type: 'portcullis:state', url: running.node.url, ready });
  }, READY_POLL_MS);

  let draining = false;
  drain = (reason) => {
    if (draining) return;
    draining = true;
    clearInterval(readiness);
    logger.info({ reason, deadlineMs: config.shutdownDeadlineMs }, 'proxy worker draining');
    running
      .close()
      // Spans of the requests just drained go out before the worker does.
      .then(() => tracing.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'error while draining the worker');
          process.exit(1);
        },
      );
  };
  // The primary forwards SIGTERM as a message; a signal sent to the whole process group (Ctrl-C) reaches the worker too.
  process.on('SIGTERM', () => drain('SIGTERM'));
  process.on('SIGINT', () => drain('SIGINT'));
  // Without its primary, nobody shares the port out to it any more, and nobody would replace it.
  process.on('disconnect', () => {
    if (draining) return;
    logger.error('the node primary is gone: worker exiting');
    drain('primary gone');
  });
}
