import { AsyncLocalStorage } from 'node:async_hooks';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Link, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { parseTraceParent } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';
import type { TracingSettings, SamplerName } from './settings.js';

export type { Span, SpanContext };
export { SpanKind };

export interface SpanOptions {
  /** The parent: a span of ours, or a remote span's context (from a `traceparent`). */
  parent?: Span | SpanContext;
  kind?: SpanKind;
  attributes?: Attributes;
  links?: Link[];
}

/**
 * OpenTelemetry traces for one process, exported over OTLP/HTTP (JSON). No global is
 * registered: each process (and each node or control plane a test starts in one process)
 * owns its tracer, and the span a piece of work runs under is kept in this component's own
 * async context. Callers check `enabled` before building anything, so a process without
 * `OTEL_EXPORTER_OTLP_ENDPOINT` pays one boolean test per request.
 */
export interface Tracing {
  readonly enabled: boolean;
  startSpan(name: string, options?: SpanOptions): Span;
  /**
   * Runs `work` with `span` as the active span: spans started inside without a parent, and
   * log lines, belong to it, through every callback and promise `work` starts. Costs every
   * promise of the process some work from then on (async context tracking), so the proxy's
   * hot path uses `withSpanSync` instead.
   */
  withSpan<T>(span: Span, work: () => T): T;
  /** As `withSpan`, for the synchronous part of `work` only: nearly free. */
  withSpanSync<T>(span: Span, work: () => T): T;
  activeSpan(): Span | undefined;
  /** The W3C `traceparent` naming `span` as the parent. */
  traceparentOf(span: Span): string;
  /** A remote parent from a `traceparent` header; undefined when absent or malformed. */
  parentFrom(traceparent: string | string[] | undefined): SpanContext | undefined;
  /** Ends `span` as failed with `code` (a refusal or error code, never a message that could hold input). */
  fail(span: Span, code: string): void;
  /** pino's mixin: the active span's ids on every log line written inside it. */
  logFields(): { traceId?: string; spanId?: string };
  /** Exports what has ended so far. */
  flush(): Promise<void>;
  close(): Promise<void>;
}


/** Tracing switched off: nothing is created, every call is a constant answer. */
export const TRACING_OFF: Tracing = {
  enabled: false,
  startSpan: () => trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 }),
  withSpan: (_span, work) => work(),
  withSpanSync: (_span, work) => work(),
  activeSpan: () => undefined,
  traceparentOf: () => '',
  parentFrom: () => undefined,
  fail: () => {},
  logFields: () => ({}),
  flush: async () => {},
  close: async () => {},
};

function samplerFor(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

function isSpan(parent: Span | SpanContext): parent is Span {
  return typeof (parent as Span).spanContext === 'function';
}

export interface TracingOptions {
  settings: TracingSettings;
  /** `service.name` of the spans, unless OTEL_SERVICE_NAME says otherwise. */
  serviceName: string;
}

export function createTracing({ settings, serviceName }: TracingOptions): Tracing {
  if (settings.tracesUrl === undefined) return TRACING_OFF;
  const exporter = new OTLPTraceExporter({ url: settings.tracesUrl });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName ?? serviceName }),
    sampler: samplerFor(settings.sampler, settings.samplerRatio),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: settings.exportDelayMs })],
  });
  const tracer: Tracer = provider.getTracer('portcullis');
  const active = new AsyncLocalStorage<Span>();
  // The span of the synchronous work under way (withSpanSync), over any async one.
  let current: Span | undefined;

  return {
    enabled: true,
    startSpan(name, { parent = current ?? active.getStore(), kind, attributes, links } = {}) {
      const context = parent === undefined ? ROOT_CONTEXT : isSpan(parent) ? trace.setSpan(ROOT_CONTEXT, parent) : trace.setSpanContext(ROOT_CONTEXT, parent);
      return tracer.startSpan(name, { kind, attributes, links }, context);
    },
    withSpan: (span, work) => active.run(span, work),
    withSpanSync(span, work) {
      const outer = current;
      current = span;
      try {
        return work();
      } finally {
        current = outer;
      }
    },
    activeSpan: () => current ?? active.getStore(),
    traceparentOf(span) {
      const { traceId, spanId, traceFlags } = span.spanContext();
      return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
    },
    parentFrom(traceparent) {
      if (typeof traceparent !== 'string') return undefined;
      const parsed = parseTraceParent(traceparent);
      return parsed === null ? undefined : { ...parsed, isRemote: true };
    },
    fail(span, code) {
      span.setAttribute('portcullis.error', code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    },
    logFields() {
      const span = current ?? active.getStore();
      // A new object each time: pino merges the line's own fields into what the mixin returns.
      if (span === undefined) return {};
      const { traceId, spanId } = span.spanContext();
      return { traceId, spanId };
    },
    flush: () => provider.forceFlush(),
    close: () => provider.shutdown(),
  };
}
