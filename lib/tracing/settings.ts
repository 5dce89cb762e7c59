import type { EnvReader } from '../env.js';

export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** The standard OTEL_* variables this project reads (OTEL_EXPORTER_OTLP_HEADERS is read by the exporter itself). */
export interface TracingSettings {
  /** Where spans go (OTLP/HTTP, JSON); undefined: tracing off. */
  tracesUrl: string | undefined;
  sampler: SamplerName;
  /** OTEL_TRACES_SAMPLER_ARG, for the ratio samplers. */
  samplerRatio: number;
  serviceName: string | undefined;
  /** OTEL_BSP_SCHEDULE_DELAY: how long ended spans wait to be sent together. */
  exportDelayMs: number;
}

/**
 * Tracing is on only when an OTLP endpoint is given (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as
 * is, or OTEL_EXPORTER_OTLP_ENDPOINT with `/v1/traces`, as the specification says), and
 * OTEL_SDK_DISABLED is not true.
 */
export function readTracingSettings(read: EnvReader): TracingSettings {
  const disabled = read.boolean('OTEL_SDK_DISABLED', false);
  const tracesEndpoint = read.optionalUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', ['http:', 'https:']);
  const endpoint = read.optionalUrl('OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']);
  const sampler = read.oneOf('OTEL_TRACES_SAMPLER', SAMPLERS, 'parentbased_always_on');
  const ratioText = read.optionalString('OTEL_TRACES_SAMPLER_ARG');
  const samplerRatio = ratioText === undefined ? 1 : Number(ratioText);
  if (!(samplerRatio >= 0 && samplerRatio <= 1)) read.problem(`OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, got "${ratioText}"`);
  const tracesUrl = tracesEndpoint ?? (endpoint === undefined ? undefined : `${endpoint.replace(/\/+$/, '')}/v1/traces`);
  return {
    tracesUrl: disabled ? undefined : tracesUrl,
    sampler,
    samplerRatio: samplerRatio >= 0 && samplerRatio <= 1 ? samplerRatio : 1,
    serviceName: read.optionalString('OTEL_SERVICE_NAME'),
    exportDelayMs: read.integer('OTEL_BSP_SCHEDULE_DELAY', { default: 5_000, min: 0, max: 600_000 }),
  };
}
