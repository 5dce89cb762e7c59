import { freePort } from '../../test/helpers/ports.js';
import { startProcess, type ChildServer } from '../../test/helpers/processes.js';

export interface BenchNodeOptions {
  controlPlaneUrl: string;
  nodeToken: string;
  redisUrl: string;
  port: number;
  /** Pin it to this core. */
  core?: number;
  /** The program and its flags before the `proxy` subcommand (a profiler's, the built dist); default: bin/portcullis.ts under tsx. */
  command?: string[];
  /** More settings, or other values for these. */
  env?: Record<string, string>;
}

/**
 * `portcullis proxy` for a benchmark: one process (WORKERS=1, as the contenders it is compared
 * with), in region `bench`, allowed to reach the local origin.
 */
export async function startBenchNode({ controlPlaneUrl, nodeToken, redisUrl, port, core, command, env = {} }: BenchNodeOptions): Promise<ChildServer> {
  return startProcess({
    ...(command === undefined ? { entry: 'bin/portcullis.ts', args: ['proxy'] } : { command: [...command, 'proxy'] }),
    ...(core === undefined ? {} : { core }),
    env: {
      REGION: 'bench',
      WORKERS: '1',
      REDIS_URL: redisUrl,
      CONTROL_PLANE_URL: controlPlaneUrl,
      NODE_TOKEN: nodeToken,
      PORT: String(port),
      METRICS_PORT: String(await freePort()),
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      LOG_LEVEL: 'info',
      ...env,
    },
    ready: /proxy node listening/,
  });
}
