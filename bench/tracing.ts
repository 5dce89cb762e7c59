/**
 * `npm run bench:tracing`: what tracing costs a proxy node on the hot path (cached key,
 * direct egress, plain HTTP over keep-alive), with tracing off, on at 1% sampling and on at
 * 100%, three node processes side by side in one run, interleaved. The nodes export to an
 * OTLP/HTTP sink in this process that reads and drops what it gets. The node under test is
 * pinned to core 0, the load generator, the origin and the sink to core 1.
 *
 * Settings: BENCH_DURATION (seconds per run, 5), BENCH_ROUNDS (3), BENCH_CONNECTIONS (50).
 * `--quick`: one round of 1 s, to check that it runs.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRedisPublisher } from '../lib/feed/redis-bus.js';
import { startTestControlPlane } from '../test/helpers/control-plane.js';
import { freePort } from '../test/helpers/ports.js';
import { pinSelf, startProcess, type ChildServer } from '../test/helpers/processes.js';
import { startRedis } from '../test/helpers/redis.js';
import { cpuSecondsOfTree } from './lib/cpu.js';
import { interleave, median, medianWithRange, ratio } from './lib/interleave.js';
import { runLoad } from './lib/load.js';
import { printTable, saveResults } from './lib/table.js';
import { hasWrk, runWrk } from './lib/wrk.js';
import { startBenchNode } from './lib/bench-node.js';

const quick = process.argv.includes('--quick');
const DURATION = quick ? 1 : Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = quick ? 1 : Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);

interface Variant {
  title: string;
  env: Record<string, string>;
  node?: ChildServer;
  port?: number;
}

pinSelf(1);
const useWrk = hasWrk();
const children: ChildServer[] = [];
let exportedBytes = 0;
const sink = http.createServer((request, response) => {
  request.on('data', (chunk: Buffer) => (exportedBytes += chunk.length));
  request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
const redis = await startRedis();
const cp = await startTestControlPlane({ publishers: new Map([['bench', createRedisPublisher({ url: redis.url })]]) });

try {
  const origin = await startProcess({ core: 1, entry: 'bench/servers/origin.ts', args: ['1024', '1024'], ready: /^\{.*\}$/m });
  children.push(origin);
  const originPort = (JSON.parse(/^\{.*\}$/m.exec(origin.output())![0]) as { http: number }).http;
  await cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
  const team = await cp.createTeam('bench');
  const key = (await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'traced', pools: ['direct'] } })).body.key as string;

  const traced = { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_BSP_SCHEDULE_DELAY: '1000' };
  const variants: Variant[] = [
    { title: 'tracing off', env: {} },
    { title: 'tracing on, 1% sampled', env: { ...traced, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' } },
    { title: 'tracing on, 100% sampled', env: { ...traced, OTEL_TRACES_SAMPLER: 'always_on' } },
  ];
  for (const variant of variants) {
    variant.port = await freePort();
    variant.node = await startBenchNode({ controlPlaneUrl: cp.url, nodeToken: cp.nodeToken, redisUrl: redis.url, port: variant.port, core: 0, env: variant.env });
    children.push(variant.node);
  }

  const originUrl = `http://127.0.0.1:${originPort}/`;
  /** One load run, with the node's CPU time per answered request: steadier than throughput on a shared machine. */
  const run = async (variant: Variant, connections: number, durationSeconds: number) => {
    const headers = { host: `127.0.0.1:${originPort}`, 'Proxy-Authorization': `Bearer ${key}` };
    const connectTo = `http://127.0.0.1:${variant.port}`;
    const cpuBefore = cpuSecondsOfTree(variant.node!.pid) ?? NaN;
    const result = useWrk
      ? await runWrk({ title: variant.title, connectTo, path: originUrl, headers, connections, durationSeconds, core: 1 })
      : await runLoad({ title: variant.title, url: connectTo, path: originUrl, headers, connections, durationSeconds });
    const cpuSeconds = (cpuSecondsOfTree(variant.node!.pid) ?? NaN) - cpuBefore;
    return { ...result, cpuMicrosPerRequest: (cpuSeconds * 1e6) / Math.max(1, result.okPerSecond * durationSeconds) };
  };
  // Warm the key cache, the keep-alive pools and the JIT of each node.
  for (const variant of variants) await run(variant, 10, 1);

  const runs = await interleave(variants, ROUNDS, (variant) => run(variant, CONNECTIONS, DURATION));
  const off = median(runs.get(variants[0]!)!.map((result) => result.okPerSecond));
  const offCpu = median(runs.get(variants[0]!)!.map((result) => result.cpuMicrosPerRequest));
  const rows = variants.map((variant) => {
    const results = runs.get(variant)!;
    return {
      scenario: variant.title,
      conns: CONNECTIONS,
      'req/s (2xx)': medianWithRange(results.map((result) => result.okPerSecond)),
      'p99 ms': medianWithRange(results.map((result) => result.p99Ms), 1),
      'non-2xx': results.reduce((sum, result) => sum + result.non2xx + result.errors + result.timeouts, 0),
      'vs off': variant === variants[0] ? '' : ratio(median(results.map((result) => result.okPerSecond)), off),
      'node CPU µs per request': medianWithRange(results.map((result) => result.cpuMicrosPerRequest)),
      'CPU vs off': variant === variants[0] ? '' : ratio(median(results.map((result) => result.cpuMicrosPerRequest)), offCpu),
    };
  });
  printTable(`Tracing cost on a proxy node (${ROUNDS} × ${DURATION} s per variant, interleaved)`, rows);
  process.stdout.write(`exported to the sink: ${(exportedBytes / 1e6).toFixed(1)} MB\n`);
  process.stdout.write(`results: ${saveResults('tracing', Object.fromEntries([...runs].map(([variant, results]) => [variant.title, results])))}\n`);
} finally {
  await Promise.all(children.map((child) => child.stop()));
  await cp.close();
  await redis.close();
  await new Promise<void>((resolve) => sink.close(() => resolve()));
}
