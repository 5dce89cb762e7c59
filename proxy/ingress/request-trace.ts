import { SpanKind, type Span, type Tracing } from '../../lib/tracing/tracing.js';
import { Refusal } from '../refusal.js';

type Attributes = Record<string, string | number | boolean>;

/**
 * One proxied request's or tunnel's trace: its span and the child spans of each step
 * (credentials, key, limits, exit selection, exit connect, upstream exchange). Created only
 * when tracing is on; the hot path passes `undefined` otherwise. Attributes name keys and
 * teams by id and targets by host, never a credential.
 */
export class RequestTrace {
  readonly span: Span;
  #ended = false;

  constructor(
    readonly tracing: Tracing,
    name: 'proxy.request' | 'proxy.tunnel',
    attributes: Attributes,
  ) {
    this.span = tracing.startSpan(name, { kind: SpanKind.SERVER, attributes });
  }

  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  /** A child span started now; the caller ends it. */
  step(name: string, attributes?: Attributes): Span {
    return this.tracing.startSpan(name, { parent: this.span, attributes });
  }

  /**
   * Runs one step of admission in its own child span, synchronous or not, with the span
   * active (a verify call it starts joins it). A refusal ends the step as failed with its code.
   */
  timed<T>(name: string, work: () => T | Promise<T>, describe?: (value: T) => Attributes): T | Promise<T> {
    const span = this.step(name);
    const done = (value: T): T => {
      if (describe !== undefined) span.setAttributes(describe(value));
      span.end();
      return value;
    };
    const failed = (error: unknown): never => {
      this.tracing.fail(span, error instanceof Refusal ? error.code : 'error');
      span.end();
      throw error;
    };
    let result: T | Promise<T>;
    try {
      result = this.tracing.withSpan(span, work);
    } catch (error) {
      return failed(error);
    }
    return result instanceof Promise ? result.then(done, failed) : done(result);
  }

  /** Ends the request's span with its outcome (`ok`, a refusal code, `client_aborted`...). */
  end(outcome: string, attributes?: Attributes): void {
    if (this.#ended) return;
    this.#ended = true;
    if (attributes !== undefined) this.span.setAttributes(attributes);
    this.span.setAttribute('portcullis.outcome', outcome);
    if (outcome !== 'ok' && outcome !== 'client_aborted') this.tracing.fail(this.span, outcome);
    this.span.end();
  }
}
