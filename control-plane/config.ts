import { createEnvReader, redactUrlPassword, settingNames, type EnvReader, type LogLevel } from '../lib/env.js';
import { parseRedisTarget } from '../lib/redis-target.js';
import { readTracingSettings, type TracingSettings } from '../lib/tracing/settings.js';
import type { RetentionSettings } from './db/retention.js';
import type { HeavyCallSettings } from './http/heavy-calls.js';

/** What a control plane process serves: the admin API and dashboard, the node API, the relay. */
export const ROLES = ['admin', 'node-api', 'relay'] as const;
export type Role = (typeof ROLES)[number];

export type DatabaseLocation = { url: string } | { dataDir: string };

export interface PoolSettings {
  maxConnections: number;
  statementTimeoutMs: number;
  connectionTimeoutMs: number;
}

export interface ControlPlaneConfig {
  /** A deployment may run node-API instances apart from the admin API; every role by default. */
  roles: ReadonlySet<Role>;
  host: string;
  port: number;
  database: DatabaseLocation;
  /** The bulkheads: admin/dashboard traffic and proxy-node traffic never share connections. */
  adminPool: PoolSettings;
  nodePool: PoolSettings;
  /** Admin lists, searches and exports at once per process, so the node API keeps the event loop. */
  heavyCalls: HeavyCallSettings;
  /** When set, this exact token is a platform admin token (in addition to stored ones). */
  adminToken: string | undefined;
  nodeToken: string | undefined;
  bodyLimitBytes: number;
  trustProxy: boolean;
  /** What explain assumes nodes do with private destinations (the nodes' ALLOW_PRIVATE_DESTINATIONS). */
  allowPrivateDestinations: boolean;
  logLevel: LogLevel;
  shutdownDeadlineMs: number;
  /** Region name → Redis URL of that region's bus. Empty: the all-in-one in-process bus. */
  regions: Map<string, string>;
  relay: { heartbeatMs: number; pollMs: number; leaseMs: number };
  nodeLivenessMs: number;
  retention: RetentionSettings;
  tracingSettings: TracingSettings;
  /**
   * Where clients reach the proxy (`http://host:port`), for the dashboard's ready-to-paste
   * snippets; unset on a standalone control plane, which cannot know it.
   */
  publicProxyUrl?: string | undefined;
}

const MIN_SECRET_LENGTH = 24;

/** Reads and validates every control plane setting; throws ConfigError naming each bad variable. */
export interface ControlPlaneConfigContext {
  dataDir: string;
  /** A standalone control plane needs NODE_TOKEN; the all-in-one start generates one. */
  requireNodeToken: boolean;
}

export function readControlPlaneConfig(env: NodeJS.ProcessEnv, context: ControlPlaneConfigContext): ControlPlaneConfig {
  const read = createEnvReader(env);
  const hours = (name: string, fallback: number) => read.integer(name, { default: fallback, min: 1, max: 87_600 }) * 3_600_000;
  const databaseUrl = read.optionalUrl('DATABASE_URL', ['postgres:', 'postgresql:']);
  const adminToken = read.optionalString('ADMIN_TOKEN');
  const nodeToken = read.optionalString('NODE_TOKEN');
  if (context.requireNodeToken && nodeToken === undefined) read.problem('NODE_TOKEN is required: the token proxy nodes present to the node API');
  for (const [name, value] of [['ADMIN_TOKEN', adminToken], ['NODE_TOKEN', nodeToken]] as const) {
    if (value !== undefined && value.length < MIN_SECRET_LENGTH) read.problem(`${name} must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  const config: ControlPlaneConfig = {
    roles: parseRoles(read.optionalString('ROLES'), read.problem),
    host: read.string('HOST', '127.0.0.1'),
    port: read.integer('PORT', { default: 8080, min: 0, max: 65535 }),
    database: databaseUrl !== undefined ? { url: databaseUrl } : { dataDir: read.string('DATA_DIR', context.dataDir) },
    adminPool: {
      maxConnections: read.integer('ADMIN_POOL_SIZE', { default: 10, min: 1, max: 500 }),
      statementTimeoutMs: read.integer('ADMIN_STATEMENT_TIMEOUT_MS', { default: 5_000, min: 10, max: 600_000 }),
      connectionTimeoutMs: read.integer('ADMIN_POOL_WAIT_MS', { default: 5_000, min: 10, max: 600_000 }),
    },
    nodePool: {
      maxConnections: read.integer('NODE_POOL_SIZE', { default: 10, min: 1, max: 500 }),
      statementTimeoutMs: read.integer('NODE_STATEMENT_TIMEOUT_MS', { default: 1_000, min: 10, max: 600_000 }),
      connectionTimeoutMs: read.integer('NODE_POOL_WAIT_MS', { default: 1_000, min: 10, max: 600_000 }),
    },
    heavyCalls: {
      concurrency: read.integer('ADMIN_HEAVY_CONCURRENCY', { default: 4, min: 1, max: 1_000 }),
      queue: read.integer('ADMIN_HEAVY_QUEUE', { default: 32, min: 0, max: 100_000 }),
      queueWaitMs: read.integer('ADMIN_HEAVY_QUEUE_MS', { default: 2_000, min: 1, max: 600_000 }),
    },
    adminToken,
    nodeToken,
    bodyLimitBytes: read.integer('BODY_LIMIT_BYTES', { default: 64 * 1024, min: 1024, max: 16 * 1024 * 1024 }),
    trustProxy: read.boolean('TRUST_PROXY', false),
    allowPrivateDestinations: read.boolean('ALLOW_PRIVATE_DESTINATIONS', false),
    logLevel: read.logLevel(),
    shutdownDeadlineMs: read.integer('SHUTDOWN_DEADLINE_MS', { default: 10_000, min: 0, max: 600_000 }),
    regions: parseRegions(read.optionalString('REGIONS'), read.problem),
    relay: {
      heartbeatMs: read.integer('HEARTBEAT_MS', { default: 500, min: 10, max: 60_000 }),
      // Followers try the relay's lock at this pace: a dead leader is replaced within about one poll.
      pollMs: read.integer('RELAY_POLL_MS', { default: 500, min: 10, max: 60_000 }),
      leaseMs: read.integer('RELAY_LEASE_MS', { default: 5_000, min: 100, max: 600_000 }),
    },
    nodeLivenessMs: read.integer('NODE_LIVENESS_MS', { default: 10_000, min: 100, max: 3_600_000 }),
    publicProxyUrl: readPublicProxyUrl(read),
    retention: {
      outboxMs: hours('OUTBOX_RETENTION_HOURS', 168),
      usageBatchesMs: hours('USAGE_BATCH_RETENTION_HOURS', 168),
      revocationAcksMs: hours('REVOCATION_ACK_RETENTION_HOURS', 168),
      nodesMs: hours('NODE_RETENTION_HOURS', 24),
      intervalMs: read.integer('RETENTION_INTERVAL_MS', { default: 60_000, min: 100, max: 86_400_000 }),
      batchRows: read.integer('RETENTION_BATCH_ROWS', { default: 1_000, min: 1, max: 100_000 }),
    },
    tracingSettings: readTracingSettings(read),
  };
  // The relay says something on its connection at least every heartbeat and poll: a lease
  // shorter than twice that would end a healthy session.
  const busiest = Math.max(config.relay.heartbeatMs, config.relay.pollMs);
  if (config.relay.leaseMs < 2 * busiest) read.problem(`RELAY_LEASE_MS must be at least twice HEARTBEAT_MS and RELAY_POLL_MS (${2 * busiest}), got ${config.relay.leaseMs}`);
  read.finish();
  return config;
}

/** `admin,node-api` → the set; unknown and repeated names are reported, and the set may not be empty. */
function parseRoles(value: string | undefined, problem: (message: string) => void): ReadonlySet<Role> {
  if (value === undefined) return new Set(ROLES);
  const roles = new Set<Role>();
  for (const entry of value.split(',').map((part) => part.trim())) {
    if (!(ROLES as readonly string[]).includes(entry)) problem(`ROLES must list some of ${ROLES.join(', ')} separated by commas; unknown role "${entry}"`);
    else if (roles.has(entry as Role)) problem(`ROLES lists "${entry}" twice`);
    else roles.add(entry as Role);
  }
  return roles.size > 0 ? roles : new Set(ROLES);
}

/** Every variable `portcullis control-plane` reads. */
export const controlPlaneSettingNames = (): string[] => settingNames((env) => readControlPlaneConfig(env, { dataDir: 'unused', requireNodeToken: true }));

/** PUBLIC_PROXY_URL as clients write it: scheme, host and port, nothing else. */
function readPublicProxyUrl(read: EnvReader): string | undefined {
  const value = read.optionalUrl('PUBLIC_PROXY_URL', ['http:', 'https:']);
  if (value === undefined) return undefined;
  const url = new URL(value);
  if (url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    read.problem(`PUBLIC_PROXY_URL must be a scheme, host and port only, like "http://proxy.example.com:8000", got "${value}"`);
    return undefined;
  }
  return url.origin;
}

const REGION_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

/**
 * `us=redis://…,eu=redis+sentinel://h1:26379,h2:26379/mymaster` → Map; each malformed entry
 * is reported by name. A comma starts a new region only before `name=`: the commas of a
 * Sentinel URL's host list stay in its URL.
 */
function parseRegions(value: string | undefined, problem: (message: string) => void): Map<string, string> {
  const regions = new Map<string, string>();
  if (value === undefined) return regions;
  for (const entry of value.split(/,(?=\s*[a-z0-9][a-z0-9-]*=)/)) {
    const separator = entry.indexOf('=');
    const name = entry.slice(0, Math.max(0, separator)).trim();
    const url = entry.slice(separator + 1).trim();
    if (separator < 0 || !REGION_NAME.test(name)) {
      problem(`REGIONS must look like "us=redis://host:6379,eu=redis://host:6379"; bad entry "${redactUrlPassword(entry.trim())}"`);
      continue;
    }
    const target = parseRedisTarget(url);
    if ('problem' in target) {
      problem(`REGIONS entry "${name}" ${target.problem}`);
      continue;
    }
    if (regions.has(name)) problem(`REGIONS lists "${name}" twice`);
    regions.set(name, url);
  }
  return regions;
}
