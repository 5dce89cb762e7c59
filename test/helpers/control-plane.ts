import { readControlPlaneConfig } from '../../control-plane/config.js';
import { createControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../control-plane/control-plane.js';
import { createLogger } from '../../lib/logger.js';
import { generateToken } from '../../lib/secret-format.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface ApiClient {
  request<T = any>(method: string, path: string, options?: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<ApiResponse<T>>;
}

export interface TestControlPlane extends ControlPlane, ApiClient {
  adminToken: string;
  nodeToken: string;
  database: TestDatabase;
  /** Creates a team and a team token; returns both. */
  createTeam(name?: string): Promise<{ id: string; name: string; token: string }>;
}

export function createApiClient(baseUrl: string, defaultToken: string | null): ApiClient {
  return {
    async request(method, path, { token = defaultToken, body, rawBody, headers = {} } = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      const allHeaders = init.headers as Record<string, string>;
      if (token !== null) allHeaders.authorization = `Bearer ${token}`;
      if (body !== undefined || rawBody !== undefined) {
        allHeaders['content-type'] ??= 'application/json';
        init.body = rawBody ?? JSON.stringify(body);
      }
      const response = await fetch(new URL(path, baseUrl), init);
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, headers: response.headers, body: parsed as any };
    },
  };
}

/** The control plane's settings with nothing set: the defaults, from the one place they live. */
export const DEFAULT_SETTINGS = readControlPlaneConfig({}, { dataDir: 'unused', requireNodeToken: false });

/** Options for a control plane on `databaseUrl` and an ephemeral port, as tests start them. */
export function testControlPlaneOptions(databaseUrl: string, overrides: Partial<ControlPlaneOptions> & Pick<ControlPlaneOptions, 'adminToken' | 'nodeToken'>): ControlPlaneOptions {
  return {
    host: '127.0.0.1',
    port: 0,
    database: { url: databaseUrl },
    adminPool: { maxConnections: 8, statementTimeoutMs: 10_000, connectionTimeoutMs: 10_000 },
    nodePool: { maxConnections: 4, statementTimeoutMs: 5_000, connectionTimeoutMs: 5_000 },
    heavyCalls: DEFAULT_SETTINGS.heavyCalls,
    roles: DEFAULT_SETTINGS.roles,
    bodyLimitBytes: 64 * 1024,
    trustProxy: false,
    publishers: new Map(),
    relay: { heartbeatMs: 100, pollMs: 250, leaseMs: 5_000 },
    nodeLivenessMs: 10_000,
    retention: DEFAULT_SETTINGS.retention,
    logger: createLogger({ level: process.env.TEST_LOG_LEVEL === undefined ? 'silent' : (process.env.TEST_LOG_LEVEL as 'info'), name: 'control-plane' }),
    ...overrides,
  };
}

/** A control plane on a fresh PostgreSQL database and an ephemeral port. */
export async function startTestControlPlane(overrides: Partial<ControlPlaneOptions> = {}): Promise<TestControlPlane> {
  const database = await createTestDatabase();
  const adminToken = generateToken();
  const nodeToken = generateToken();
  let controlPlane: ControlPlane;
  try {
    controlPlane = await createControlPlane(testControlPlaneOptions(database.url, { adminToken, nodeToken, ...overrides }));
  } catch (error) {
    await database.drop();
    throw error;
  }
  const client = createApiClient(controlPlane.url, adminToken);
  let teams = 0;
  return {
    ...controlPlane,
    ...client,
    adminToken,
    nodeToken,
    database,
    async createTeam(name = `team-${++teams}-${Math.random().toString(36).slice(2, 8)}`) {
      const team = await client.request('POST', '/v1/teams', { body: { name } });
      if (team.status !== 201) throw new Error(`creating team failed: ${team.status} ${JSON.stringify(team.body)}`);
      const token = await client.request('POST', `/v1/teams/${team.body.id}/tokens`, { body: { name: 'test' } });
      if (token.status !== 201) throw new Error(`creating token failed: ${token.status}`);
      return { id: team.body.id, name, token: token.body.token };
    },
    async close() {
      await controlPlane.close();
      await database.drop();
    },
  };
}
