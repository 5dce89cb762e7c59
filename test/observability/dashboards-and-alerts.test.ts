import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import t from 'tap';
import { generateToken } from '../../lib/secret-format.js';
import { createApiClient } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';
import { startOrigin } from '../helpers/origin.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startControlPlaneProcess, startProxyProcess } from '../helpers/processes.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRedis } from '../helpers/redis.js';

const DASHBOARD = new URL('../../deploy/observability/grafana-dashboard.json', import.meta.url);
const ALERTS = new URL('../../deploy/observability/alerts.yml', import.meta.url);
const README = new URL('../../README.md', import.meta.url);

/** Every PromQL expression of the dashboard's panels. */
function dashboardExpressions(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(dashboardExpressions);
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([name, inner]) => (name === 'expr' && typeof inner === 'string' ? [inner] : dashboardExpressions(inner)));
}

const metricNames = (expressions: string[]) => new Set(expressions.flatMap((expression) => expression.match(/\bportcullis_[a-z_]+/g) ?? []));

/** Metric families in a /metrics page, by name, with their type. */
function families(page: string): Map<string, string> {
  return new Map([...page.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((match) => [match[1]!, match[2]!]));
}

/** A name the rules use exists: as a family, or as a histogram's series. */
function exists(name: string, known: Map<string, string>): boolean {
  if (known.has(name)) return true;
  const series = /^(.+)_(bucket|sum|count)$/.exec(name);
  return series !== null && known.get(series[1]!) === 'histogram';
}

const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8'));
const rulesText = await readFile(ALERTS, 'utf8');
const ruleExpressions = [...rulesText.matchAll(/^\s+expr: (.+)$/gm)].map((match) => match[1]!);
const alertNames = [...rulesText.matchAll(/^\s+- alert: (\S+)$/gm)].map((match) => match[1]!);

// The real processes, as deployed: a control plane, a node in its region, tracing on.
const receiver = await startOtlpReceiver();
t.teardown(() => receiver.close());
const redis = await startRedis();
t.teardown(() => redis.close());
const database = await createTestDatabase();
t.teardown(() => database.drop());
const origin = await startOrigin();
t.teardown(() => origin.close());
const tracingEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' };
const adminToken = generateToken();
const nodeToken = generateToken();
const controlPlane = await startControlPlaneProcess({ DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken, REGIONS: `local=${redis.url}`, ...tracingEnv });
t.teardown(() => controlPlane.kill('SIGKILL'));
const api = createApiClient(controlPlane.url, adminToken);
/** Set-up steps throw rather than assert: an assertion at the top level would let tap end the run early. */
function expectStatus(response: { status: number; body: unknown }, status: number, what: string) {
  if (response.status !== status) throw new Error(`${what}: ${response.status} ${JSON.stringify(response.body)}`);
  return response;
}
expectStatus(await api.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } }), 201, 'pool');
const team = expectStatus(await api.request('POST', '/v1/teams', { body: { name: 'observed' } }), 201, 'team');
const node = await startProxyProcess({ REGION: 'local', CONTROL_PLANE_URL: controlPlane.url, NODE_TOKEN: nodeToken, REDIS_URL: redis.url, ...tracingEnv });
t.teardown(() => node.kill('SIGKILL'));
const key = expectStatus(await api.request('POST', `/v1/teams/${(team.body as { id: string }).id}/keys`, { body: { name: 'observed', pools: ['direct'] } }), 201, 'key');
const proxied = await proxyRequest(node.port, `${origin.url}/observed`, bearer((key.body as { key: string }).key));
if (proxied.status !== 200) throw new Error(`proxied request: ${proxied.status} ${proxied.body}`);

t.test('every metric the dashboard and the alert rules name exists in the processes’ /metrics', async (t) => {
  const pages = await Promise.all([`${controlPlane.url}/metrics`, `http://127.0.0.1:${node.metricsPort}/metrics`].map(async (url) => (await fetch(url)).text()));
  const known = new Map([...families(pages[0]!), ...families(pages[1]!)]);
  t.ok(known.size > 20, `metric families found (${known.size})`);
  const panelNames = metricNames(dashboardExpressions(dashboard));
  const ruleNames = metricNames(ruleExpressions);
  t.ok(panelNames.size >= 20, `the dashboard names ${panelNames.size} metrics`);
  t.ok(ruleNames.size >= 7, `the rules name ${ruleNames.size} metrics`);
  t.same([...panelNames].filter((name) => !exists(name, known)), [], 'no dashboard metric is missing');
  t.same([...ruleNames].filter((name) => !exists(name, known)), [], 'no alert metric is missing');
});

t.test('the dashboard covers nodes and control plane; the rules cover every failure the runbook names', async (t) => {
  const titles = dashboard.panels.map((panel: { title: string }) => panel.title).join('\n');
  for (const topic of [/Refusals by code/, /Key cache/, /Verify latency/, /Feed silence per node/, /Applied seq per node/, /Revocation propagation/, /limiter mode/i, /Usage backlog/, /API/]) {
    t.match(titles, topic, `a panel for ${topic.source}`);
  }
  t.same(
    [...alertNames].sort(),
    [
      'PortcullisControlPlaneDatabaseUnavailable',
      'PortcullisExitFailureRate',
      'PortcullisFeedSilent',
      'PortcullisLimiterLocalFallback',
      'PortcullisRevocationNotComplete',
      'PortcullisRevocationSlow',
      'PortcullisUsageBacklogGrowing',
    ],
  );
  const readme = await readFile(README, 'utf8');
  const runbook = readme.slice(readme.indexOf('## Operating it'), readme.indexOf('## How revocation reaches every region'));
  for (const alert of alertNames) t.match(runbook, `\`${alert}\``, `the runbook says what ${alert} means`);
});

t.test('the alert rules parse with promtool', async (t) => {
  const found = await promisify(execFile)('promtool', ['--version']).then(
    () => true,
    () => false,
  );
  if (!found) return t.plan(0, 'promtool is not installed here (apt-get install prometheus provides it): rule syntax not checked');
  const { stdout } = await promisify(execFile)('promtool', ['check', 'rules', ALERTS.pathname]);
  t.match(stdout, new RegExp(`SUCCESS: ${alertNames.length} rules found`));
});

t.test('the real processes export their traces when OTEL_EXPORTER_OTLP_ENDPOINT is set', async (t) => {
  const joined = await waitFor(
    () => {
      const request = receiver.spans.find((span) => span.name === 'proxy.request' && span.service === 'portcullis-proxy');
      if (request === undefined) return undefined;
      return receiver.spans.find((span) => span.traceId === request.traceId && span.service === 'portcullis-control-plane' && span.name === 'POST /internal/v1/keys/verify');
    },
    { what: "the node's request trace, joined by the control plane", timeoutMs: 20_000 },
  );
  t.ok(joined, 'one trace across the two processes');
});
