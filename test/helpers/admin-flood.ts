import http from 'node:http';
import { createPgDatabase } from '../../control-plane/db/pg-database.js';
import { generateToken } from '../../lib/secret-format.js';
import { createApiClient } from './control-plane.js';
import { startOrigin, type Origin } from './origin.js';
import { createTestDatabase } from './postgres.js';
import { startControlPlaneProcess, startProxyProcess, type ControlPlaneProcess, type ProxyProcess } from './processes.js';
import { bearer, proxyRequest } from './proxy-client.js';
import { startRedis } from './redis.js';
import { seedKeys, seedUsableKeys } from './seed-keys.js';

export interface AdminFlood {
  /** Answers so far, by status. */
  statuses: Map<number, number>;
  /** Bytes of answers read so far. */
  bytes(): number;
  /** Stops sending and resolves once the calls in flight have answered. */
  stop(): Promise<void>;
}

/**
 * `clients` admin API clients, each asking for `path` again as soon as its last answer is
 * read, as a dashboard left open on many screens or a script paging in a loop would. Each
 * answer is read to its end and thrown away: the flood costs the server, not this process.
 */
export function startAdminFlood({ url, path, token, clients }: { url: string; path: string; token: string; clients: number }): AdminFlood {
  const target = new URL(path, url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const statuses = new Map<number, number>();
  let bytes = 0;
  let stopped = false;

  const once = () =>
    new Promise<void>((resolve) => {
      const request = http.get(target, { agent, headers: { authorization: `Bearer ${token}` } }, (response) => {
        response.on('data', (chunk: Buffer) => (bytes += chunk.length));
        response.on('end', () => {
          statuses.set(response.statusCode!, (statuses.get(response.statusCode!) ?? 0) + 1);
          resolve();
        });
        response.on('error', () => resolve());
      });
      request.on('error', () => {
        statuses.set(0, (statuses.get(0) ?? 0) + 1);
        // A server that refuses connections answers at once: do not spin on it.
        setTimeout(resolve, 5);
      });
    });

  const running = Array.from({ length: clients }, async () => {
    while (!stopped) await once();
  });
  return {
    statuses,
    bytes: () => bytes,
    async stop() {
      stopped = true;
      await Promise.all(running);
      agent.destroy();
    },
  };
}

export interface FirstUse {
  /** Each first use's latency, sorted ascending, in ms. */
  latencies: number[];
  /** Statuses other than 200, if any. */
  failures: number[];
}

/**
 * Uses each key for the first time through the node, one after another, and times the
 * whole request: the node has never seen the key, so each one waits for a verification
 * round trip to the node API.
 */
export async function measureFirstUse({ proxyPort, keys, targetUrl }: { proxyPort: number; keys: readonly string[]; targetUrl: string }): Promise<FirstUse> {
  const latencies: number[] = [];
  const failures: number[] = [];
  for (const key of keys) {
    const started = performance.now();
    const response = await proxyRequest(proxyPort, targetUrl, bearer(key));
    latencies.push(performance.now() - started);
    if (response.status !== 200) failures.push(response.status);
  }
  latencies.sort((a, b) => a - b);
  return { latencies, failures };
}

/** The `p`-th percentile (0–100) of ascending `sorted`, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface FloodWorld {
  /** Where the admin API is served (the first control plane with the `admin` role). */
  adminUrl: string;
  adminToken: string;
  controlPlanes: ControlPlaneProcess[];
  node: ProxyProcess;
  origin: Origin;
  teamId: string;
  /** The list page the flood asks for: 500 keys of a team that has more. */
  floodPath: string;
  /** `count` keys no node has seen yet. */
  freshKeys(count: number): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * PostgreSQL, a region's Redis, control plane processes with the given settings (`ROLES`,
 * say; one with every role by default), a proxy node process whose node API is the first
 * control plane serving it, an origin, and a team with `listedKeys` keys to list.
 */
export async function startFloodWorld({ controlPlanes: settings = [{}], listedKeys = 2_000 }: { controlPlanes?: NodeJS.ProcessEnv[]; listedKeys?: number } = {}): Promise<FloodWorld> {
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
  };
  try {
    const database = await createTestDatabase();
    closers.push(() => database.drop());
    const redis = await startRedis();
    closers.push(() => redis.close());
    const adminToken = generateToken();
    const nodeToken = generateToken();
    const controlPlanes: ControlPlaneProcess[] = [];
    for (const env of settings) {
      const cp = await startControlPlaneProcess({ DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken, REGIONS: `local=${redis.url}`, ...env });
      closers.push(() => cp.kill('SIGKILL'));
      controlPlanes.push(cp);
    }
    const serves = (role: string) => controlPlanes.find((_, i) => settings[i]!.ROLES === undefined || settings[i]!.ROLES!.split(',').includes(role))!;
    const adminUrl = serves('admin').url;
    const api = createApiClient(adminUrl, adminToken);
    await api.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
    const team = (await api.request('POST', '/v1/teams', { body: { name: 'flood' } })).body as { id: string };
    const db = createPgDatabase({ url: database.url, applicationName: 'flood-seed', maxConnections: 1, statementTimeoutMs: 60_000, connectionTimeoutMs: 10_000 });
    closers.push(() => db.close());
    await seedKeys(db, { teamId: team.id, count: listedKeys });
    const origin = await startOrigin();
    closers.push(() => origin.close());
    // Every first use is an unknown key to the node: its budget for those is not what is measured.
    const node = await startProxyProcess({
      REGION: 'local',
      CONTROL_PLANE_URL: serves('node-api').url,
      NODE_TOKEN: nodeToken,
      REDIS_URL: redis.url,
      UNKNOWN_KEYS_PER_SECOND: '100000',
      UNKNOWN_KEYS_PER_SECOND_PER_CLIENT: '100000',
    });
    closers.push(() => node.kill('SIGKILL'));
    return {
      adminUrl,
      adminToken,
      controlPlanes,
      node,
      origin,
      teamId: team.id,
      floodPath: `/v1/teams/${team.id}/keys?limit=500`,
      freshKeys: (count) => seedUsableKeys(db, team.id, count),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
