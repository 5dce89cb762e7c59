import { Writable } from 'node:stream';
import t from 'tap';
import { createEnvReader } from '../../lib/env.js';
import { createLogger } from '../../lib/logger.js';
import { readTracingSettings } from '../../lib/tracing/settings.js';
import { createTracing, type Tracing } from '../../lib/tracing/tracing.js';
import { waitFor } from '../helpers/deadline.js';
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const receiver = await startOtlpReceiver();
t.teardown(() => receiver.close());

/** A tracing component per "process", from the standard variables, as `portcullis` reads them. */
function tracingFor(serviceName: string, env: Record<string, string> = {}): Tracing {
  const read = createEnvReader({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: 'always_on', OTEL_BSP_SCHEDULE_DELAY: '50', ...env });
  const settings = readTracingSettings(read);
  read.finish();
  return createTracing({ settings, serviceName });
}

const cpTracing = tracingFor('test-control-plane');
const nodeTracing = tracingFor('test-node-a');
const otherNodeTracing = tracingFor('test-node-b');
const tracings = [cpTracing, nodeTracing, otherNodeTracing];
t.teardown(() => Promise.all(tracings.map((tracing) => tracing.close())));

const world = await startWorld({ exitCountries: ['DE'], controlPlane: { tracing: cpTracing }, node: { tracing: nodeTracing } });
t.teardown(() => world.close());
const otherNode = await world.startNode({ tracing: otherNodeTracing });
const secrets: string[] = [world.cp.adminToken, world.cp.nodeToken, world.team.token];

const flushAll = () => Promise.all(tracings.map((tracing) => tracing.flush()));
const inTrace = (traceId: string) => receiver.spans.filter((span) => span.traceId === traceId);
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((span) => span.parentSpanId === parent.spanId);

/** The one span named `name` among `spans` (with `where`), or undefined. */
function only(spans: ReceivedSpan[], name: string, where: (span: ReceivedSpan) => boolean = () => true): ReceivedSpan | undefined {
  const found = spans.filter((span) => span.name === name && where(span));
  return found.length === 1 ? found[0] : undefined;
}

t.test('a proxied request is one trace across the node and the control plane, each step a child span', async (t) => {
  const { id, key } = await world.createKey();
  secrets.push(key);
  const response = await proxyRequest(world.node.port, `${world.origin.url}/traced`, bearer(key));
  t.equal(response.status, 200);

  const trace = await waitFor(
    async () => {
      await flushAll();
      const root = only(receiver.spans, 'proxy.request', (span) => span.attributes['portcullis.outcome'] === 'ok' && span.service === 'test-node-a');
      if (root === undefined) return undefined;
      const spans = inTrace(root.traceId);
      // The control plane's route span and its SQL reach the receiver on their own schedule.
      const route = only(spans, 'POST /internal/v1/keys/verify');
      if (route === undefined || childrenOf(spans, route).length === 0 || only(spans, 'upstream.exchange') === undefined) return undefined;
      return { root, spans, route };
    },
    { what: 'the traced request, its steps, and the control plane spans that verified its key' },
  );
  const { root, spans, route } = trace;
  t.equal(root.parentSpanId, undefined, 'the request span is the root');
  t.equal(root.attributes['server.address'], '127.0.0.1');
  const steps = childrenOf(spans, root).map((span) => span.name);
  t.same([...steps].sort(), ['auth.credentials', 'auth.key', 'exit.connect', 'exit.select', 'limits.admit', 'upstream.exchange'], 'each step of the request is a child of it');
  const keyStep = only(spans, 'auth.key')!;
  t.equal(keyStep.attributes['portcullis.auth.cache'], 'verify', 'a first request verifies its key');
  t.equal(keyStep.attributes['portcullis.key_id'], id, 'the key is named by its id');
  t.equal(only(spans, 'exit.connect')!.attributes['portcullis.exit.country'], 'DE');

  const call = only(spans, 'node-api POST /internal/v1/keys/verify');
  t.ok(call, 'the verify call to the control plane is a span');
  t.equal(call!.parentSpanId, keyStep.spanId, 'below the key step that waited for it');
  t.equal(call!.service, 'test-node-a');
  t.equal(route.service, 'test-control-plane', 'the control plane joined the trace through traceparent');
  t.equal(route.parentSpanId, call!.spanId, "its route span is the node call's child");
  t.equal(route.attributes['http.route'], '/internal/v1/keys/verify');
  const sql = childrenOf(spans, route).filter((span) => span.name === 'pg.query');
  t.ok(sql.length > 0, 'the SQL the route ran is below it');
  t.match(sql.map((span) => span.attributes['db.query.text']).join('\n'), /FROM api_keys|FROM keys|SELECT/);

  // A second request hits the cache: no control plane call in its trace.
  t.equal((await proxyRequest(world.node.port, `${world.origin.url}/traced-again`, bearer(key))).status, 200);
  const cached = await waitFor(
    async () => {
      await flushAll();
      const keySteps = receiver.spans.filter((span) => span.name === 'auth.key' && span.attributes['portcullis.key_id'] === id && span.attributes['portcullis.auth.cache'] === 'hit');
      return keySteps.length === 1 ? keySteps[0] : undefined;
    },
    { what: 'the cached request trace' },
  );
  t.notOk(inTrace(cached.traceId).some((span) => span.service === 'test-control-plane'), 'a cache hit never reaches the control plane');
});

t.test('a tunnel and a refusal are traced, and the refusal names its trace', async (t) => {
  const { key } = await world.createKey();
  secrets.push(key);
  const tunnel = await proxyConnect(world.node.port, new URL(world.origin.url).host, bearer(key));
  t.equal(tunnel.status, 200);
  tunnel.socket.destroy();

  const refused = await proxyRequest(world.node.port, `${world.origin.url}/refused`, bearer(`${key.slice(0, -4)}AAAA`));
  t.equal(refused.status, 407);
  const traceId = refused.headers['x-portcullis-trace-id'];
  t.match(traceId, /^[0-9a-f]{32}$/, 'the refusal carries its trace id');
  const refusal = await waitFor(
    async () => {
      await flushAll();
      return only(inTrace(String(traceId)), 'proxy.request');
    },
    { what: 'the refused request span' },
  );
  t.equal(refusal.attributes['portcullis.outcome'], 'key_invalid');
  t.equal(refusal.attributes['portcullis.error'], 'key_invalid');

  const tunnelSpan = await waitFor(
    async () => {
      await flushAll();
      return only(receiver.spans, 'proxy.tunnel', (span) => span.attributes['portcullis.outcome'] === 'ok');
    },
    { what: 'the tunnel span, once the tunnel closed' },
  );
  t.same(childrenOf(inTrace(tunnelSpan.traceId), tunnelSpan).map((span) => span.name).sort(), ['auth.credentials', 'auth.key', 'exit.connect', 'exit.select', 'limits.admit', 'upstream.exchange']);
});

t.test('a revocation is one trace: the revoke call, the relay publishing it, and its application on every node', async (t) => {
  const { id, key } = await world.createKey();
  secrets.push(key);
  const revoke = await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
  t.equal(revoke.status, 200);

  const found = await waitFor(
    async () => {
      await flushAll();
      const applications = receiver.spans.filter((span) => span.name === 'revocation.apply' && span.attributes['portcullis.key_id'] === id);
      if (applications.length < 2) return undefined;
      const spans = inTrace(applications[0]!.traceId);
      const route = only(spans, 'POST /v1/teams/:team/keys/:id/revoke');
      const publish = only(spans, 'revocation.publish');
      return route !== undefined && publish !== undefined ? { applications, spans, route, publish } : undefined;
    },
    { what: 'the revocation applied on both nodes, in the trace of its revoke call' },
  );
  const { applications, spans, route, publish } = found;
  t.equal(route.service, 'test-control-plane');
  t.equal(route.parentSpanId, undefined, 'the revoke call starts the trace');
  t.equal(publish.parentSpanId, route.spanId, "the relay's publish hangs below the revoke call");
  t.equal(publish.attributes['portcullis.region'], 'local');
  t.equal(applications.length, 2, 'one application span per node');
  t.same(applications.map((span) => span.attributes['portcullis.node_id']).sort(), [world.node.nodeId, otherNode.nodeId].sort(), 'one for each node');
  for (const application of applications) {
    t.equal(application.traceId, route.traceId, 'in the same trace');
    // A node that heard a heartbeat ahead of the event fetches it from the node API, which
    // carries the revoke call's own context: then it hangs below the call itself.
    t.ok([publish.spanId, route.spanId].includes(application.parentSpanId!), 'below the publish to its region, or the revoke call if the node caught up');
  }
  t.ok(
    spans.some((span) => span.name === 'pg.transaction' && span.parentSpanId === route.spanId),
    "the revoke call's transaction is in the trace",
  );
});

t.test('no key, token or credential appears in any span attribute', async (t) => {
  await flushAll();
  t.ok(receiver.spans.length > 20, `spans collected (${receiver.spans.length})`);
  t.same([...receiver.contentTypes], ['application/json'], 'exported as OTLP/HTTP JSON');
  const exitTokens = world.exits.map((exit) => new URL(exit.poolUrl).password);
  const leaks: string[] = [];
  for (const span of receiver.spans) {
    for (const [name, value] of Object.entries(span.attributes)) {
      const text = String(value);
      for (const secret of [...secrets, ...exitTokens]) if (text.includes(secret)) leaks.push(`${span.name} ${name}`);
      if (/sk_live_|pc_tok_|bearer |basic /i.test(text)) leaks.push(`${span.name} ${name}: ${text.slice(0, 40)}`);
    }
  }
  t.same(leaks, [], 'no attribute holds a secret');
});

t.test('log lines written inside a span carry its trace and span ids; others do not', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const logger = createLogger({ level: 'info', name: 'test', destination, mixin: nodeTracing.logFields });
  const span = nodeTracing.startSpan('logging');
  await nodeTracing.withSpan(span, async () => {
    await new Promise((resolve) => setImmediate(resolve));
    logger.info('inside');
  });
  span.end();
  logger.info({ region: 'eu' }, 'outside');
  logger.info('outside again');
  t.equal(lines[0]!.traceId, span.spanContext().traceId);
  t.equal(lines[0]!.spanId, span.spanContext().spanId);
  t.equal(lines[1]!.traceId, undefined);
  t.equal(lines[2]!.region, undefined, "one line's fields never leak into the next");
});

t.test('with tracing on, the debug answer names the request’s trace', async (t) => {
  t.equal((await world.cp.request('PATCH', `/v1/teams/${world.team.id}`, { body: { debugEnabled: true } })).status, 200);
  const { key } = await world.createKey();
  const response = await waitFor(
    async () => {
      const answer = await proxyRequest(world.node.port, `${world.origin.url}/debug-traced`, { ...bearer(key), 'proxy-debug': '1' });
      return answer.headers['proxy-debug-info'] === undefined ? undefined : answer;
    },
    { what: 'a debug answer' },
  );
  const traceId = /trace=([0-9a-f]{32})/.exec(String(response.headers['proxy-debug-info']))?.[1];
  t.ok(traceId, 'the trace id is in Proxy-Debug-Info');
  await waitFor(
    async () => {
      await flushAll();
      return only(inTrace(traceId!), 'proxy.request');
    },
    { what: 'that trace at the receiver' },
  );
});
