import { startProcess, type ChildServer } from './processes.js';

export interface NodeProcess extends ChildServer {
  port: number;
}

export interface NodeProcessOptions {
  controlPlaneUrl: string;
  nodeToken: string;
  redisUrl: string;
  /** Further settings (NODE_ID, USAGE_FLUSH_MS, …), as environment variables. */
  env?: Record<string, string>;
  /** Open files allowed (for tests that hold thousands of connections). */
  fileLimit?: number;
}

/** `portcullis proxy` as a real process on an ephemeral port, loopback destinations allowed. */
export async function startNodeProcess({ controlPlaneUrl, nodeToken, redisUrl, env = {}, fileLimit }: NodeProcessOptions): Promise<NodeProcess> {
  const child = await startProcess({
    entry: 'bin/portcullis.ts',
    args: ['proxy'],
    env: {
      REGION: 'local',
      CONTROL_PLANE_URL: controlPlaneUrl,
      NODE_TOKEN: nodeToken,
      REDIS_URL: redisUrl,
      PORT: '0',
      METRICS_PORT: '0',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      LOG_LEVEL: 'info',
      ...env,
    },
    ready: /proxy node listening/,
    ...(fileLimit !== undefined && { fileLimit }),
  });
  const listening = await child.waitForLog('proxy node listening');
  return Object.assign(child, { port: Number(new URL(String(listening.url)).port) });
}
