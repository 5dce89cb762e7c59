import { cpus } from 'node:os';
import { freePort } from '../../test/helpers/ports.js';
import { startProcess, type ChildServer } from '../../test/helpers/processes.js';
import { cpuSecondsOfTree } from './cpu.js';
import { interleave, median, medianWithRange } from './interleave.js';
import { runLoad } from './load.js';
import type { Row } from './table.js';
import { runWrk } from './wrk.js';

export interface WorkerScalingOptions {
  /** WORKERS of each node measured; the first is the baseline of the scaling ratio. */
  workerCounts: number[];
  /** What a node needs besides its ports and WORKERS (control plane, Redis, region). */
  nodeEnv: Record<string, string>;
  originUrl: string;
  headers: Record<string, string>;
  connections: number;
  durationSeconds: number;
  rounds: number;
  useWrk: boolean;
}

/**
 * Plain HTTP through a node per worker count, runs interleaved. The nodes are not pinned
 * (they are to use every core), so the load generator shares the cores with them: req/s
 * alone understates scaling on a small machine, and requests per CPU-second of the node
 * (the primary and its workers together) is the figure that carries over to another machine.
 */
export async function measureWorkerScaling(options: WorkerScalingOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const nodes: { workers: number; port: number; node: ChildServer }[] = [];
  try {
    for (const workers of options.workerCounts) {
      const port = await freePort();
      const node = await startProcess({
        // The benchmark pins itself to one core, and children inherit that: the node gets every core back.
        command: ['taskset', '-c', `0-${cpus().length - 1}`, process.execPath, '--import', import.meta.resolve('tsx'), 'bin/portcullis.ts', 'proxy'],
        env: { ...options.nodeEnv, WORKERS: String(workers), PORT: String(port), METRICS_PORT: String(await freePort()), LOG_LEVEL: 'info' },
        ready: /proxy node listening/,
      });
      nodes.push({ workers, port, node });
    }
    const run = async ({ port, node }: { port: number; node: ChildServer }, durationSeconds: number) => {
      const connectTo = `http://127.0.0.1:${port}`;
      const cpuBefore = cpuSecondsOfTree(node.pid);
      const result = options.useWrk
        ? await runWrk({ title: 'workers', connectTo, path: options.originUrl, headers: options.headers, connections: options.connections, durationSeconds, core: 1 })
        : await runLoad({ title: 'workers', url: connectTo, path: options.originUrl, headers: options.headers, connections: options.connections, durationSeconds });
      const cpuAfter = cpuSecondsOfTree(node.pid);
      return { ...result, cpuSeconds: cpuBefore === undefined || cpuAfter === undefined ? NaN : cpuAfter - cpuBefore };
    };
    // Every worker warms its own key cache and JIT.
    for (const node of nodes) await run(node, 1);
    const runs = await interleave(nodes, options.rounds, (node) => run(node, options.durationSeconds));
    const baseline = median(runs.get(nodes[0]!)!.map((result) => result.okPerSecond));
    const rows = nodes.map((node) => {
      const results = runs.get(node)!;
      const okPerSecond = results.map((result) => result.okPerSecond);
      return {
        WORKERS: node.workers,
        conns: options.connections,
        'req/s (2xx)': medianWithRange(okPerSecond),
        'p99 ms': medianWithRange(results.map((result) => result.p99Ms), 1),
        'req per CPU-s (all processes)': medianWithRange(results.map((result) => (result.okPerSecond * options.durationSeconds) / result.cpuSeconds)),
        'non-2xx': results.reduce((sum, result) => sum + result.non2xx + result.errors + result.timeouts, 0),
        [`vs WORKERS=${nodes[0]!.workers}`]: `${(median(okPerSecond) / baseline).toFixed(2)}×`,
      };
    });
    return { rows, raw: Object.fromEntries(nodes.map((node) => [`WORKERS=${node.workers}`, runs.get(node)])) };
  } finally {
    await Promise.all(nodes.map(({ node }) => node.stop()));
  }
}
