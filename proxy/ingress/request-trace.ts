import { performance } from 'node:perf_hooks';
import { SpanKind, type Span, type Tracing } from '../../lib/tracing/tracing.js';
import { Refusal } from '../refusal.js';

type Attributes = Record<string, string | number | boolean>;

/** The response header answering `Proxy-Debug: 1`. */
export const DEBUG_INFO_HEADER = 'Proxy-Debug-Info';

/**
 * One proxied request's or tunnel's record: when tracing is on, its span and a child span
 * per step (credentials, key, limits, exit selection, exit connect, upstream exchange);
 * when the client sent `Proxy-Debug: 1`, the steps' timings and what they decided, for
 * `Proxy-Debug-Info`. Created only for one of those; the hot path passes `undefined`
 * otherwise. Attributes name keys and teams by id and targets by host, never a credential.
 */
export class RequestTrace {
  readonly span: Span | undefined;
  /** The client asked for debugging; `debug` once its key's team turns out to allow it. */
  readonly wantsDebug: boolean;
  debug = false;
  /** Step durations (ms) and what each step decided, for the debug header. */
  readonly timings: Record<string, number> = {};
  readonly facts: Attributes = {};
  #ended = false;

  constructor(
    readonly tracing: Tracing,
    name: 'proxy.request' | 'proxy.tunnel',
    attributes: Attributes,
    wantsDebug: boolean,
  ) {
    this.span = tracing.enabled ? tracing.startSpan(name, { kind: SpanKind.SERVER, attributes }) : undefined;
    this.wantsDebug = wantsDebug;
    // A request sampled out keeps its trace id (refusals name it) but builds no child span.
    this.#recording = this.span?.isRecording() ?? false;
  }

  readonly #recording: boolean;

  get traceId(): string | undefined {
    return this.span?.spanContext().traceId;
  }

  /** A child span started now, when this request is traced and sampled; the caller ends it. */
  step(name: string, attributes?: Attributes): Span | undefined {
    return this.#recording ? this.tracing.startSpan(name, { parent: this.span, attributes }) : undefined;
  }

  /**
   * Runs one step of admission, synchronous or not: timed, and in its own child span when
   * tracing is on (active while the step runs synchronously, so a verify call it starts
   * joins it). A refusal ends the step as failed with its code.
   */
  timed<T>(name: string, work: () => T | Promise<T>, describe?: (value: T) => Attributes): T | Promise<T> {
    if (!this.#recording && !this.wantsDebug) return work();
    const span = this.step(name);
    const started = performance.now();
    const done = (value: T): T => {
      this.timings[name] = performance.now() - started;
      if (describe !== undefined) {
        const described = describe(value);
        Object.assign(this.facts, described);
        span?.setAttributes(described);
      }
      span?.end();
      return value;
    };
    const failed = (error: unknown): never => {
      if (span !== undefined) {
        this.tracing.fail(span, error instanceof Refusal ? error.code : 'error');
        span.end();
      }
      throw error;
    };
    let result: T | Promise<T>;
    try {
      // Synchronous scope only: a verify call the step starts takes its parent then (see the
      // verify batcher), and the proxy never turns on async context tracking.
      result = span === undefined ? work() : this.tracing.withSpanSync(span, work);
    } catch (error) {
      return failed(error);
    }
    return result instanceof Promise ? result.then(done, failed) : done(result);
  }

  /** `Proxy-Debug-Info`'s value: how the decision went, step by step, and where to find its trace. */
  debugInfo(exitId: string, attempts: number): string {
    const ms = (name: string) => (this.timings[name] ?? 0).toFixed(2);
    const parts = [
      `auth=${this.facts['portcullis.auth.cache'] ?? 'unknown'}`,
      `auth_ms=${ms('auth.key')}`,
      `limiter=${this.facts['portcullis.limiter.mode'] ?? 'unknown'}`,
      `remaining=${this.facts['portcullis.limiter.remaining'] ?? 'unlimited'}`,
      `limits_ms=${ms('limits.admit')}`,
      `exit=${exitId}`,
      `attempts=${attempts}`,
    ];
    if (this.traceId !== undefined) parts.push(`trace=${this.traceId}`);
    return parts.join('; ');
  }

  /** Ends the request's span with its outcome (`ok`, a refusal code, `client_aborted`...). */
  end(outcome: string, attributes?: Attributes): void {
    if (this.#ended || this.span === undefined) return;
    this.#ended = true;
    if (attributes !== undefined) this.span.setAttributes(attributes);
    this.span.setAttribute('portcullis.outcome', outcome);
    if (outcome !== 'ok' && outcome !== 'client_aborted') this.tracing.fail(this.span, outcome);
    this.span.end();
  }
}
