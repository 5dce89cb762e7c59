import t from 'tap';
import { ConfigError, createEnvReader } from '../../lib/env.js';
import { readTracingSettings, type TracingSettings } from '../../lib/tracing/settings.js';
import { createTracing, TRACING_OFF } from '../../lib/tracing/tracing.js';

function settingsFrom(env: Record<string, string>): TracingSettings {
  const read = createEnvReader(env);
  const settings = readTracingSettings(read);
  read.finish();
  return settings;
}

t.test('tracing is off unless an OTLP endpoint is set, and off again with OTEL_SDK_DISABLED', async (t) => {
  t.equal(settingsFrom({}).tracesUrl, undefined);
  t.equal(createTracing({ settings: settingsFrom({}), serviceName: 'x' }), TRACING_OFF, 'off: the constant component, nothing created');
  t.equal(settingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).tracesUrl, 'http://collector:4318/v1/traces', 'the base endpoint gets /v1/traces');
  t.equal(
    settingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:9999/custom' }).tracesUrl,
    'http://traces:9999/custom',
    'the traces endpoint is used as is, over the base one',
  );
  t.equal(settingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }).tracesUrl, undefined);
});

t.test('the sampler and its ratio follow OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG', async (t) => {
  t.same(
    (({ sampler, samplerRatio }) => ({ sampler, samplerRatio }))(settingsFrom({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' })),
    { sampler: 'parentbased_traceidratio', samplerRatio: 0.01 },
  );
  t.equal(settingsFrom({}).sampler, 'parentbased_always_on', 'the specification’s default');
});

t.test('bad tracing settings are refused at start, naming the variable', async (t) => {
  t.throws(() => settingsFrom({ OTEL_TRACES_SAMPLER: 'sometimes' }), ConfigError);
  t.throws(() => settingsFrom({ OTEL_TRACES_SAMPLER_ARG: '2' }), /OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1/);
  t.throws(() => settingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), /OTEL_EXPORTER_OTLP_ENDPOINT/);
});

t.test('a sampled-out request keeps a trace id to quote and records nothing', async (t) => {
  const tracing = createTracing({ settings: { ...settingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }), sampler: 'always_off' }, serviceName: 'x' });
  t.teardown(() => tracing.close());
  const span = tracing.startSpan('proxy.request');
  t.match(span.spanContext().traceId, /^[0-9a-f]{32}$/);
  t.notOk(span.isRecording());
  t.match(tracing.traceparentOf(span), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'its traceparent says it is not sampled');
  span.end();
});
