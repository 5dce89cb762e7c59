import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { createSecureContext } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { createEnvReader, settingNames, type EnvReader, type LogLevel } from '../lib/env.js';
import { samePortProblems } from '../lib/startup-error.js';
import { readTracingSettings, type TracingSettings } from '../lib/tracing/settings.js';
import { PROXY_PROTOCOL_MODES } from './ingress/proxy-protocol.js';
import type { ProxyNodeTuning } from './node.js';

/** Every proxy node setting except where its control plane and feed are (see `readProxyConfig`). */
export interface ProxyNodeSettings extends ProxyNodeTuning {
  metricsPort: number;
  verifyTimeoutMs: number;
  shutdownDeadlineMs: number;
  logLevel: LogLevel;
  tracingSettings: TracingSettings;
}

export interface ProxyConfig extends ProxyNodeSettings {
  /** One control plane, or several on one database (CONTROL_PLANE_URL lists them, comma-separated). */
  controlPlaneUrls: string[];
  nodeToken: string;
  redisUrl: string;
  /** Processes serving the node's one port (node:cluster); 1 runs the node in this process alone. */
  workers: number;
}

const REGION_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** The node's own settings; shared by `portcullis proxy` and the node inside `portcullis start`. */
export interface ProxyNodeDefaults {
  /** PORT for a standalone node; PROXY_PORT inside `portcullis start`, where PORT is the control plane's. */
  portVariable: 'PORT' | 'PROXY_PORT';
  port: number;
  metricsPort: number;
  region: string;
}

/** A PEM file's contents, or a problem naming the variable and what is wrong with the file. */
function readPemFile(read: EnvReader, name: string): Buffer | undefined {
  const path = read.optionalString(name);
  if (path === undefined) return void read.problem(`${name} is required with TLS_PROXY_PORT: the path of a PEM file`);
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'there is no such file' : code === 'EACCES' ? 'it cannot be read (permission denied)' : code === 'EISDIR' ? 'it is a directory' : `it cannot be read (${code})`;
    return void read.problem(`${name}=${path}: ${why}`);
  }
}

/** The HTTPS proxy listener: its port, certificate chain and private key, checked to belong together. */
function readTlsProxySettings(read: EnvReader): ProxyNodeTuning['tlsProxy'] {
  if (read.optionalString('TLS_PROXY_PORT') === undefined) {
    for (const name of ['TLS_CERT_FILE', 'TLS_KEY_FILE']) if (read.optionalString(name) !== undefined) read.problem(`${name} is set but TLS_PROXY_PORT is not: set both or neither`);
    return undefined;
  }
  const port = read.integer('TLS_PROXY_PORT', { default: 0, min: 0, max: 65535 });
  const cert = readPemFile(read, 'TLS_CERT_FILE');
  const key = readPemFile(read, 'TLS_KEY_FILE');
  if (cert === undefined || key === undefined) return undefined;
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    const message = (error as Error).message;
    if (/key values mismatch/i.test(message)) read.problem('TLS_KEY_FILE is not the private key of the certificate in TLS_CERT_FILE');
    else read.problem(`TLS_CERT_FILE and TLS_KEY_FILE must be a PEM certificate (chain) and its PEM private key, unencrypted: ${message}`);
    return undefined;
  }
  return { port, cert, key };
}

export function readProxyNodeSettings(read: EnvReader, defaults: ProxyNodeDefaults): ProxyNodeSettings {
  const region = read.string('REGION', defaults.region);
  if (!REGION_NAME.test(region)) read.problem(`REGION must be a short lower-case name such as "eu", got "${region}"`);
  const millis = (name: string, fallback: number) => read.integer(name, { default: fallback, min: 1, max: 86_400_000 });
  return {
    nodeId: read.string('NODE_ID', `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`),
    region,
    host: read.string('HOST', '127.0.0.1'),
    port: read.integer(defaults.portVariable, { default: defaults.port, min: 0, max: 65535 }),
    socksPort: read.optionalString('SOCKS_PORT') === undefined ? undefined : read.integer('SOCKS_PORT', { default: 0, min: 0, max: 65535 }),
    tlsProxy: readTlsProxySettings(read),
    metricsPort: read.integer('METRICS_PORT', { default: defaults.metricsPort, min: 0, max: 65535 }),
    allowPrivateDestinations: read.boolean('ALLOW_PRIVATE_DESTINATIONS', false),
    proxyProtocol: read.oneOf('PROXY_PROTOCOL', PROXY_PROTOCOL_MODES, 'off'),
    cache: {
      maxEntries: read.integer('KEY_CACHE_MAX_ENTRIES', { default: 100_000, min: 1, max: 10_000_000 }),
      ttlMs: millis('KEY_CACHE_TTL_MS', 300_000),
      negativeTtlMs: millis('NEGATIVE_CACHE_TTL_MS', 10_000),
      maxNegativeEntries: read.integer('NEGATIVE_CACHE_MAX_ENTRIES', { default: 50_000, min: 1, max: 10_000_000 }),
      unknownPerSecond: read.integer('UNKNOWN_KEYS_PER_SECOND', { default: 1_000, min: 1, max: 1_000_000 }),
      unknownPerSecondPerClient: read.integer('UNKNOWN_KEYS_PER_SECOND_PER_CLIENT', { default: 20, min: 1, max: 1_000_000 }),
      maxVerifyInFlight: read.integer('VERIFY_MAX_IN_FLIGHT', { default: 1_000, min: 1, max: 100_000 }),
    },
    maxVerifyCalls: read.integer('VERIFY_MAX_CALLS', { default: 8, min: 1, max: 1_000 }),
    stalenessBoundMs: millis('STALENESS_BOUND_MS', 2_000),
    failOpen: read.boolean('FAIL_OPEN', false),
    timeouts: {
      connectMs: millis('CONNECT_TIMEOUT_MS', 5_000),
      responseMs: millis('RESPONSE_TIMEOUT_MS', 60_000),
      tunnelIdleMs: millis('TUNNEL_IDLE_TIMEOUT_MS', 300_000),
      requestHeadersMs: millis('REQUEST_HEADERS_TIMEOUT_MS', 10_000),
      keepAliveMs: millis('KEEP_ALIVE_TIMEOUT_MS', 5_000),
    },
    verifyTimeoutMs: millis('VERIFY_TIMEOUT_MS', 2_000),
    upstreamKeepAliveMs: millis('UPSTREAM_KEEP_ALIVE_MS', 30_000),
    poolRefreshMs: millis('POOL_REFRESH_MS', 5_000),
    reportIntervalMs: millis('REPORT_INTERVAL_MS', 1_000),
    limiterCooldownMs: millis('LIMITER_COOLDOWN_MS', 1_000),
    usageFlushMs: millis('USAGE_FLUSH_MS', 2_000),
    maxPendingUsageBatches: read.integer('USAGE_MAX_PENDING_BATCHES', { default: 1_000, min: 1, max: 1_000_000 }),
    maxExitAttempts: read.integer('MAX_EXIT_ATTEMPTS', { default: 3, min: 1, max: 20 }),
    defaultSessionMinutes: read.integer('SESSION_MINUTES', { default: 10, min: 1, max: 1_440 }),
    shutdownDeadlineMs: read.integer('SHUTDOWN_DEADLINE_MS', { default: 10_000, min: 0, max: 600_000 }),
    logLevel: read.logLevel(),
    tracingSettings: readTracingSettings(read),
  };
}

/** `portcullis proxy`: a node on its own, with its control plane and its region's Redis. */
export function readProxyConfig(env: NodeJS.ProcessEnv): ProxyConfig {
  const read = createEnvReader(env);
  const settings = readProxyNodeSettings(read, { portVariable: 'PORT', port: 8000, metricsPort: 9091, region: 'local' });
  const controlPlaneUrls = read.optionalUrlList('CONTROL_PLANE_URL', ['http:', 'https:']);
  const redisUrl = read.optionalRedisUrl('REDIS_URL');
  const nodeToken = read.optionalString('NODE_TOKEN');
  if (controlPlaneUrls === undefined) read.problem('CONTROL_PLANE_URL is required: where the node verifies keys (one URL, or several on one database, comma-separated)');
  if (redisUrl === undefined) read.problem("REDIS_URL is required: the region's Redis carrying revocations");
  if (nodeToken === undefined) read.problem('NODE_TOKEN is required: the token of the node API');
  const workers = read.integer('WORKERS', { default: availableParallelism(), min: 1, max: 1_024 });
  for (const problem of samePortProblems({ PORT: settings.port, METRICS_PORT: settings.metricsPort, SOCKS_PORT: settings.socksPort ?? 0, TLS_PROXY_PORT: settings.tlsProxy?.port ?? 0 })) read.problem(problem);
  read.finish();
  return { ...settings, controlPlaneUrls: controlPlaneUrls!, redisUrl: redisUrl!, nodeToken: nodeToken!, workers };
}

/** Every variable `portcullis proxy` reads. */
export const proxySettingNames = (): string[] => settingNames(readProxyConfig);
