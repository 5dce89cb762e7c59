import type { ControlPlaneOptions } from '../../control-plane/control-plane.js';
import { createExitServer, type ExitServer } from '../../exit/exit-server.js';
import { createInProcessBus } from '../../lib/feed/in-process-bus.js';
import { createLogger } from '../../lib/logger.js';
import { generateToken } from '../../lib/secret-format.js';
import type { ProxyNode } from '../../proxy/node.js';
import { startTestControlPlane, type TestControlPlane } from './control-plane.js';
import { startOrigin, type Origin } from './origin.js';
import { proxyRequest } from './proxy-client.js';
import { startTestProxyNode, type TestProxyNodeOptions } from './proxy-node.js';

export interface World {
  cp: TestControlPlane;
  team: { id: string; name: string; token: string };
  node: ProxyNode;
  origin: Origin;
  exits: ExitServer[];
  /** Creates a key in the world's team and returns its secret and id. */
  createKey(body?: Record<string, unknown>): Promise<{ id: string; key: string }>;
  /** The stand-in exit that carried a request through `node` to the origin; throws unless it was served. */
  exitFor(headers: Record<string, string>): Promise<string>;
  startNode(overrides?: Partial<TestProxyNodeOptions>): Promise<ProxyNode>;
  close(): Promise<void>;
}

/** Where a stand-in exit stands: its pool entry's country, and city, state and ASN if any. */
export interface ExitPlacement {
  country: string;
  city?: string;
  state?: string;
  asn?: number;
}

export interface WorldOptions {
  /** Exit servers to start, by country; each becomes an exit of pool `residential`. */
  exitCountries?: string[];
  /** Instead of `exitCountries`: exits placed more finely. */
  exitPlacements?: ExitPlacement[];
  node?: Partial<TestProxyNodeOptions>;
  /** Options for the control plane (its tracing, say). */
  controlPlane?: Partial<ControlPlaneOptions>;
}

/**
 * A control plane (fresh database), stand-in exits in a `residential` pool, an origin,
 * and one proxy node on the in-process bus.
 */
export async function startWorld({ exitCountries = ['DE', 'DE', 'US'], exitPlacements, node: nodeOverrides = {}, controlPlane = {} }: WorldOptions = {}): Promise<World> {
  const bus = createInProcessBus();
  const cp = await startTestControlPlane({ publishers: new Map([['local', bus.publisher()]]), ...controlPlane });
  const logger = createLogger({ level: 'silent', name: 'exit' });
  const placements = exitPlacements ?? exitCountries.map((country) => ({ country }));
  const exits = await Promise.all(
    placements.map(({ country }, i) => createExitServer({ id: `exit-${country.toLowerCase()}-${i}`, country, token: generateToken(), allowPrivateDestinations: true, logger })),
  );
  const pool = await cp.request('POST', '/v1/pools', { body: { name: 'residential', exits: exits.map((exit, i) => ({ ...placements[i]!, url: exit.poolUrl })) } });
  if (pool.status !== 201) throw new Error(`pool: ${JSON.stringify(pool.body)}`);
  const team = await cp.createTeam();
  const origin = await startOrigin();
  const nodes: ProxyNode[] = [];
  const startNode = async (overrides: Partial<TestProxyNodeOptions> = {}) => {
    const started = await startTestProxyNode({ controlPlaneUrl: cp.url, nodeToken: cp.nodeToken, subscriber: bus.subscriber(), ...nodeOverrides, ...overrides });
    nodes.push(started);
    return started;
  };
  const node = await startNode();
  return {
    cp,
    team,
    node,
    origin,
    exits,
    async createKey(body = {}) {
      const created = await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `key-${Math.random().toString(36).slice(2)}`, ...body } });
      if (created.status !== 201) throw new Error(`key: ${JSON.stringify(created.body)}`);
      return { id: created.body.id, key: created.body.key };
    },
    async exitFor(headers) {
      const response = await proxyRequest(node.port, `${origin.url}/route`, headers);
      if (response.status !== 200) throw new Error(`status ${response.status}: ${response.body}`);
      return JSON.parse(response.body).exit;
    },
    startNode,
    async close() {
      await Promise.all(nodes.map((started) => started.close()));
      await Promise.all(exits.map((exit) => exit.close()));
      await origin.close();
      await cp.close();
    },
  };
}
