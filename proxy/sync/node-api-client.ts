import type { Checked } from '../../contract/check.js';
import {
  checkAnswer,
  type NodeReport,
  type NodeReportAnswer,
  type Pool,
  type RevocationsAnswer,
  type UsageAnswer,
  type UsageBatch,
  type VerifiedKey,
} from '../../contract/node-api.js';
import { createFailureLog, type FailureLog } from '../../lib/failure-log.js';
import type { Logger } from '../../lib/logger.js';
import { createControlPlaneEndpoints } from './control-plane-endpoints.js';
import { SpanKind, TRACING_OFF, type Span, type Tracing } from '../../lib/tracing/tracing.js';

/**
 * The proxy node's side of the node API (`/internal/v1`, contract/node-api.ts). This is
 * the only way a node learns about keys and pools; it never imports control plane
 * modules. Every answer is checked against the contract before it is used: an answer
 * that does not match is treated like a control plane that cannot be reached.
 */

export interface VerifyResult {
  key: VerifiedKey | null;
  /** The latest outbox seq in the snapshot the answer was read from. */
  seq: number;
  /** The feed epoch of that seq. */
  epoch: string;
}

export interface BatchVerifyResult {
  /** By key hash; hashes of unknown keys are absent. */
  keys: Map<string, VerifiedKey>;
  /** The latest outbox seq in the snapshot the answer was read from. */
  seq: number;
  /** The feed epoch of that seq. */
  epoch: string;
}

export interface NodeApiClient {
  /** Looks up to MAX_VERIFY_BATCH key hashes (hex) in one call; `parent`: the traced request waiting for it. */
  verifyKeys(hashesHex: readonly string[], parent?: Span): Promise<BatchVerifyResult>;
  revocationsAfter(seq: number, limit?: number): Promise<RevocationsAnswer>;
  /** Pools, or `undefined` when unchanged since `etag`. */
  pools(etag: string | undefined): Promise<{ pools: Pool[]; etag: string | undefined } | undefined>;
  report(report: NodeReport): Promise<NodeReportAnswer>;
  sendUsage(batch: UsageBatch): Promise<UsageAnswer>;
}

/** The control plane cannot be reached, refused the node, or answered something unusable. */
export class NodeApiError extends Error {
  override readonly name = 'NodeApiError';
  readonly code = 'node_api_unavailable';
  constructor(
    message: string,
    options?: ErrorOptions & { status?: number },
  ) {
    super(message, options);
    this.status = options?.status;
  }
  /** The HTTP status the control plane answered with; undefined when it was not reached. */
  readonly status: number | undefined;
}

export interface NodeApiClientOptions {
  /**
   * One control plane, or several on one database: calls are spread over them and one that
   * cannot answer is skipped while another remains (proxy/sync/control-plane-endpoints.ts).
   */
  baseUrls: readonly string[];
  nodeToken: string;
  timeoutMs: number;
  /**
   * Hears once when calls start failing (naming the path and the status or error, or the
   * field an answer breaks the contract on) and once when they work again.
   */
  logger: Logger;
  /** How long a control plane that failed is tried only after the others; 1 s unless set. */
  restMs?: number;
  now?: () => number;
  /** A call made inside a trace (a verify for a request) gets a span and sends `traceparent`. */
  tracing?: Tracing;
}

export function createNodeApiClient({ baseUrls, nodeToken, timeoutMs, logger, restMs = 1_000, now = Date.now, tracing = TRACING_OFF }: NodeApiClientOptions): NodeApiClient {
  const authorization = `Bearer ${nodeToken}`;
  const endpoints = createControlPlaneEndpoints({ urls: baseUrls, restMs, now });
  // Per control plane, when there are several: one of them down is worth a line, not one per call.
  const endpointFailures = new Map(
    baseUrls.map((url) => [
      url,
      createFailureLog(logger, {
        failing: 'a control plane cannot answer: calls go to the others while it rests',
        recovered: 'a control plane answers again: calls are spread over it again',
      }),
    ]),
  );
  // Per route: one call failing while the others work must not be logged at every retry.
  const failureLogs = new Map<string, { unavailable: FailureLog; contractBreaks: FailureLog }>();
  function failuresOf(path: string) {
    const route = path.split('?')[0]!;
    let logs = failureLogs.get(route);
    if (logs === undefined) {
      logs = {
        unavailable: createFailureLog(logger, {
          failing: 'node API unreachable or refusing this node; callers retry or fail closed',
          recovered: 'node API answers again',
        }),
        contractBreaks: createFailureLog(logger, {
          failing: 'node API answer breaks the contract; treating the control plane as unavailable',
          recovered: 'node API answers match the contract again',
        }),
      };
      failureLogs.set(route, logs);
    }
    return logs;
  }

  /**
   * Tries the control planes in turn until one answers below 500: a 5xx or no answer from one
   * says nothing about the others (every node API call may be repeated: usage batches are
   * counted once, reports and lookups change nothing twice). The last one's 5xx is returned.
   * A traced call has one span, over every control plane it tried.
   */
  async function call(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string>; parent?: Span } = {}): Promise<Response> {
    const method = init.method ?? 'GET';
    // Background calls (polls, reports) make no trace of their own.
    const parent = tracing.enabled ? (init.parent ?? tracing.activeSpan()) : undefined;
    let span: Span | undefined;
    if (parent !== undefined) {
      const route = path.split('?')[0]!;
      span = tracing.startSpan(`node-api ${method} ${route}`, { kind: SpanKind.CLIENT, parent, attributes: { 'http.request.method': method, 'url.path': route } });
    }
    const order = endpoints.order();
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    let lastError: unknown;
    for (let i = 0; i < order.length; i++) {
      const baseUrl = order[i]!;
      const isLast = i === order.length - 1;
      let response: Response;
      try {
        response = await fetch(new URL(path, baseUrl), {
          method,
          headers: {
            authorization,
            ...(body !== undefined && { 'content-type': 'application/json' }),
            ...(span !== undefined && { traceparent: tracing.traceparentOf(span) }),
            ...init.headers,
          },
          ...(body !== undefined && { body }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        lastError = error;
        noAnswerFrom(baseUrl, { path, err: error });
        continue;
      }
      if (response.status >= 500 && !isLast) {
        await response.body?.cancel();
        noAnswerFrom(baseUrl, { path, status: response.status });
        continue;
      }
      if (response.status < 500) {
        endpoints.worked(baseUrl);
        endpointFailures.get(baseUrl)?.recovered({ controlPlane: baseUrl });
      } else {
        endpoints.failed(baseUrl);
      }
      if (span !== undefined) {
        span.setAttribute('http.response.status_code', response.status);
        span.end();
      }
      return response;
    }
    if (span !== undefined) {
      tracing.fail(span, 'unreachable');
      span.end();
    }
    failuresOf(path).unavailable.failed({ path, err: lastError });
    throw new NodeApiError(`node API unreachable: ${(lastError as Error).message}`, { cause: lastError });
  }

  function noAnswerFrom(baseUrl: string, details: Record<string, unknown>): void {
    endpoints.failed(baseUrl);
    if (baseUrls.length > 1) endpointFailures.get(baseUrl)?.failed({ controlPlane: baseUrl, ...details });
  }

  /** The body of a 200 answer, checked; anything else is a NodeApiError. */
  async function answer<T>(path: string, response: Response, check: (value: unknown) => Checked<T>): Promise<T> {
    if (response.status !== 200) {
      // An unread body would keep the connection busy until it is collected.
      await response.body?.cancel();
      failuresOf(path).unavailable.failed({ path, status: response.status });
      throw new NodeApiError(`node API answered ${response.status} for ${path}`, { status: response.status });
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      failuresOf(path).unavailable.failed({ path, err: error });
      throw new NodeApiError(`node API answer to ${path} is not JSON`, { cause: error });
    }
    const checked = check(body);
    if (!checked.ok) {
      failuresOf(path).contractBreaks.failed({ path, problem: checked.problem });
      throw new NodeApiError(`node API answer to ${path} breaks the contract: ${checked.problem}`);
    }
    const logs = failuresOf(path);
    logs.unavailable.recovered();
    logs.contractBreaks.recovered();
    return checked.value;
  }

  return {
    async verifyKeys(hashesHex, parent) {
      const path = '/internal/v1/keys/verify';
      const body = await answer(path, await call(path, { method: 'POST', body: { hashes: hashesHex }, parent }), checkAnswer.verify);
      return { keys: new Map(Object.entries(body.keys)), seq: body.seq, epoch: body.epoch };
    },
    async revocationsAfter(seq, limit = 1000) {
      const path = `/internal/v1/revocations?after=${seq}&limit=${limit}`;
      return answer(path, await call(path), checkAnswer.revocations);
    },
    async pools(etag) {
      const path = '/internal/v1/pools';
      const response = await call(path, etag === undefined ? {} : { headers: { 'if-none-match': etag } });
      if (response.status === 304) {
        await response.body?.cancel();
        failuresOf(path).unavailable.recovered();
        return undefined;
      }
      const body = await answer(path, response, checkAnswer.pools);
      return { pools: body.pools, etag: response.headers.get('etag') ?? undefined };
    },
    async report(report) {
      const path = '/internal/v1/nodes/report';
      return answer(path, await call(path, { method: 'POST', body: report }), checkAnswer.report);
    },
    async sendUsage(batch) {
      const path = '/internal/v1/usage';
      return answer(path, await call(path, { method: 'POST', body: batch }), checkAnswer.usage);
    },
  };
}
