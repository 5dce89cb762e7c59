import { Redis } from 'ioredis';
import { createExitServer, type ExitServer } from '../../exit/exit-server.js';
import type { FeedSubscriber } from '../../lib/feed/bus.js';
import { createRedisPublisher, createRedisSubscriber } from '../../lib/feed/redis-bus.js';
import { createLogger } from '../../lib/logger.js';
import { generateToken } from '../../lib/secret-format.js';
import type { ProxyNode } from '../../proxy/node.js';
import { startTestControlPlane, type TestControlPlane } from './control-plane.js';
import { startOrigin, type Origin } from './origin.js';
import { startTestProxyNode, type TestProxyNodeOptions } from './proxy-node.js';
import { startRedis, type TestRedis } from './redis.js';

export interface Regions {
  cp: TestControlPlane;
  redis: Map<string, TestRedis>;
  team: { id: string; token: string };
  origin: Origin;
  exit: ExitServer;
  nodes: ProxyNode[];
  startNode(region: string, overrides?: Partial<TestProxyNodeOptions> & { wrapSubscriber?: (subscriber: FeedSubscriber) => FeedSubscriber }): Promise<ProxyNode>;
  createKey(body?: Record<string, unknown>): Promise<{ id: string; key: string }>;
  close(): Promise<void>;
}

/**
 * Several regions, each with its own private redis-server; a control plane whose relay
 * publishes to all of them; one stand-in exit; nodes started per region on demand.
 */
export async function startRegions(names: string[], controlPlaneOverrides: Parameters<typeof startTestControlPlane>[0] = {}): Promise<Regions> {
  const redis = new Map(await Promise.all(names.map(async (name) => [name, await startRedis()] as const)));
  const publishers = new Map([...redis].map(([name, server]) => [name, createRedisPublisher({ url: server.url, commandTimeoutMs: 500 })]));
  const cp = await startTestControlPlane({ publishers, ...controlPlaneOverrides });
  const exit = await createExitServer({ id: 'exit-de', country: 'DE', token: generateToken(), allowPrivateDestinations: true, logger: createLogger({ level: 'silent', name: 'exit' }) });
  await cp.request('POST', '/v1/pools', { body: { name: 'residential', exits: [{ country: 'DE', url: exit.poolUrl }] } });
  const team = await cp.createTeam();
  const origin = await startOrigin();
  const nodes: ProxyNode[] = [];
  const limitClients: Redis[] = [];
  let counter = 0;
  return {
    cp,
    redis,
    team,
    origin,
    exit,
    nodes,
    async startNode(region, { wrapSubscriber = (subscriber: FeedSubscriber) => subscriber, ...overrides } = {}) {
      const subscriber = wrapSubscriber(createRedisSubscriber({ url: redis.get(region)!.url, logger: overrides.logger ?? createLogger({ level: 'silent', name: 'proxy' }) }));
      const limitsRedis = new Redis(redis.get(region)!.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 250, enableAutoPipelining: true });
      limitsRedis.on('error', () => {});
      limitClients.push(limitsRedis);
      const node = await startTestProxyNode({
        controlPlaneUrl: overrides.controlPlaneUrl ?? cp.url,
        nodeToken: cp.nodeToken,
        subscriber,
        region,
        nodeId: `${region}-node-${++counter}`,
        limitsRedis,
        ...overrides,
      });
      nodes.push(node);
      return node;
    },
    async createKey(body = {}) {
      const created = await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `key-${Math.random().toString(36).slice(2)}`, ...body } });
      if (created.status !== 201) throw new Error(`key: ${JSON.stringify(created.body)}`);
      return { id: created.body.id, key: created.body.key };
    },
    async close() {
      await Promise.all(nodes.map((node) => node.close()));
      for (const client of limitClients) client.disconnect();
      await exit.close();
      await origin.close();
      await cp.close();
      await Promise.all([...redis.values()].map((server) => server.close()));
    },
  };
}
