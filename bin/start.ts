import { createInProcessBus } from '../lib/feed/in-process-bus.js';
import { createFirstAdminToken } from '../control-plane/bootstrap.js';
import { readControlPlaneConfig } from '../control-plane/config.js';
import { createControlPlane } from '../control-plane/control-plane.js';
import { createQuickstart, createQuickstartPool } from '../control-plane/quickstart.js';
import { normalizeCountryCode } from '../geo/countries.js';
import { createEnvReader } from '../lib/env.js';
import { createLogger } from '../lib/logger.js';
import { createTracing } from '../lib/tracing/tracing.js';
import { generateToken } from '../lib/secret-format.js';
import { exitOnSignal } from '../lib/shutdown.js';
import { explainListenError, samePortProblems } from '../lib/startup-error.js';
import { readProxyNodeSettings } from '../proxy/config.js';
import { startProxy } from '../proxy/start-proxy.js';

/**
 * The embedded node's address as a client on this machine writes it: a wildcard listening
 * address is reached through loopback. PUBLIC_PROXY_URL overrides it for everyone else.
 */
function embeddedProxyUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/**
 * `portcullis start`: the control plane, the dashboard and one proxy node in region
 * `local` with direct egress, in one process; embedded PostgreSQL under ./data unless
 * DATABASE_URL is set, and an in-process bus.
 */
export async function runStart(env: NodeJS.ProcessEnv): Promise<void> {
  const controlPlaneConfig = readControlPlaneConfig(env, { dataDir: './data', requireNodeToken: false });
  const read = createEnvReader(env);
  const proxySettings = readProxyNodeSettings(read, { portVariable: 'PROXY_PORT', port: 8000, metricsPort: 9091, region: 'local' });
  const ports = { PORT: controlPlaneConfig.port, PROXY_PORT: proxySettings.port, METRICS_PORT: proxySettings.metricsPort, SOCKS_PORT: proxySettings.socksPort ?? 0, TLS_PROXY_PORT: proxySettings.tlsProxy?.port ?? 0 };
  for (const problem of samePortProblems(ports)) read.problem(problem);
  // One process is the whole product here: it has every role.
  if (read.optionalString('ROLES') !== undefined) read.problem('ROLES is for portcullis control-plane; portcullis start runs every role');
  const rawCountry = read.string('DIRECT_EXIT_COUNTRY', 'US');
  const directCountry = normalizeCountryCode(rawCountry);
  if (directCountry === undefined) read.problem(`DIRECT_EXIT_COUNTRY must be an ISO 3166-1 alpha-2 code, got "${rawCountry}"`);
  read.finish();

  const tracing = createTracing({ settings: controlPlaneConfig.tracingSettings, serviceName: 'portcullis' });
  const logger = createLogger({ level: controlPlaneConfig.logLevel, name: 'portcullis', ...(tracing.enabled && { mixin: tracing.logFields }) });
  const bus = createInProcessBus();
  // The node talks to the control plane in this same process; the token never leaves it.
  const nodeToken = controlPlaneConfig.nodeToken ?? generateToken();
  /** The embedded node's address, known once it listens (PROXY_PORT may be 0). */
  let embeddedProxy: string | undefined;
  const controlPlane = await createControlPlane({
    ...controlPlaneConfig,
    nodeToken,
    publicProxyUrl: () => controlPlaneConfig.publicProxyUrl ?? embeddedProxy,
    logger: logger.child({ component: 'control-plane' }),
    publishers: new Map([[proxySettings.region, bus.publisher()]]),
    tracing,
  }).catch((error: unknown) => {
    throw explainListenError(error, ports);
  });
  await createQuickstartPool(controlPlane.adminDb, directCountry!);
  const proxy = await startProxy(
    proxySettings,
    { controlPlaneUrls: [controlPlane.url], nodeToken, subscriber: bus.subscriber(), redisUrl: undefined },
    logger.child({ component: 'proxy' }),
    tracing,
  ).catch(async (error: unknown) => {
    await controlPlane.close();
    throw explainListenError(error, ports);
  });
  embeddedProxy = embeddedProxyUrl(proxySettings.host, proxy.node.port);
  // The secrets shown once are created only now, with every port bound: a start that fails
  // (a port in use) leaves none behind that nobody saw, and the next start shows them.
  const firstAdminToken = controlPlaneConfig.adminToken === undefined ? await createFirstAdminToken(controlPlane.adminDb) : undefined;
  const quickstart = await createQuickstart(controlPlane.adminDb);

  const lines = [`Portcullis is running.`, `  control plane and dashboard: ${controlPlane.url}/`, `  proxy: ${proxy.node.url}`];
  if (firstAdminToken !== undefined) {
    lines.push('', 'First start. Shown once, store them now:', `  platform admin token: ${firstAdminToken}`);
  }
  if (quickstart !== undefined) {
    lines.push(
      `  API key "quickstart" of team "default" (${quickstart.teamId}): ${quickstart.key}`,
      '',
      'Try it:',
      `  curl -x http://user:${quickstart.key}@127.0.0.1:${proxy.node.port} http://example.com/`,
    );
  } else {
    lines.push('', `Create a key: curl -H "Authorization: Bearer <admin token>" -H "Content-Type: application/json" \\`, `  -d '{"name":"my-key"}' ${controlPlane.url}/v1/teams/<team id>/keys`);
  }
  process.stdout.write(`\n${lines.join('\n')}\n\n`);

  exitOnSignal(
    logger,
    async () => {
      await proxy.close();
      await controlPlane.close();
      await tracing.close();
    },
    proxySettings.shutdownDeadlineMs,
  );
}
