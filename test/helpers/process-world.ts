import { createRedisPublisher } from '../../lib/feed/redis-bus.js';
import { startTestControlPlane, type TestControlPlane } from './control-plane.js';
import { startProxyProcess, type ProxyProcess } from './processes.js';
import { startOrigin, type Origin } from './origin.js';
import { startRedis, type TestRedis } from './redis.js';

export interface ProcessWorld {
  redis: TestRedis;
  cp: TestControlPlane;
  origin: Origin;
  team: { id: string; name: string; token: string };
  /** A key of the team, granted the `direct` pool. */
  createKey(body?: Record<string, unknown>): Promise<{ id: string; key: string }>;
  /** `portcullis proxy` in the region, as a process of its own (more settings in `env`), killed when the world closes. */
  startNode(options?: { env?: Record<string, string>; fileLimit?: number }): Promise<ProxyProcess>;
  close(): Promise<void>;
}

/**
 * For tests that run proxy nodes as real processes (to kill them, or to load them apart from
 * the test): a control plane in this process publishing to one region's Redis, a `direct`
 * pool (nodes egress themselves), a team and an origin.
 */
export async function startProcessWorld(): Promise<ProcessWorld> {
  const redis = await startRedis();
  const cp = await startTestControlPlane({ publishers: new Map([['local', createRedisPublisher({ url: redis.url })]]) });
  const origin = await startOrigin();
  await cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
  const team = await cp.createTeam();
  const nodes: ProxyProcess[] = [];
  return {
    redis,
    cp,
    origin,
    team,
    async createKey(body = {}) {
      const created = await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `key-${Math.random().toString(36).slice(2)}`, pools: ['direct'], ...body } });
      if (created.status !== 201) throw new Error(`key: ${JSON.stringify(created.body)}`);
      return { id: created.body.id, key: created.body.key };
    },
    async startNode({ env = {}, fileLimit } = {}) {
      const node = await startProxyProcess({ REGION: 'local', CONTROL_PLANE_URL: cp.url, NODE_TOKEN: cp.nodeToken, REDIS_URL: redis.url, ...env }, { fileLimit });
      nodes.push(node);
      return node;
    },
    async close() {
      await Promise.all(nodes.map((node) => node.kill('SIGKILL')));
      await origin.close();
      await cp.close();
      await redis.close();
    },
  };
}
