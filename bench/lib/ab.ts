import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** True when ApacheBench is installed (`apt-get install apache2-utils`). */
export function hasAb(): boolean {
  return spawnSync('ab', ['-V'], { stdio: 'ignore' }).error === undefined;
}

export interface AbOptions {
  /** The proxy's port; undefined to load the origin straight. */
  proxyPort: number | undefined;
  /** The URL asked for (on loopback). */
  url: string;
  headers: Record<string, string>;
  connections: number;
  durationSeconds: number;
  /** Pin ab to this core. */
  core: number;
}

export interface AbResult {
  okPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
}

/**
 * One ApacheBench run (keep-alive, HTTP/1.0): a second reading of latency at many
 * connections. Against Node servers at 500 connections wrk's latencies break Little's law:
 * its mean latency times its throughput comes out well above the number of connections,
 * which no real wait can do (a bare Node server answering 51,000 req/s at a mean of 26 ms,
 * 1,340 requests in flight on 500 connections), while the servers' own clocks see no
 * request that long. ab's figures agree with Little's law, and with wrk's against squid.
 */
export async function runAb(options: AbOptions): Promise<AbResult> {
  if (!/^http:\/\/127\.0\.0\.1:\d+\//.test(options.url)) throw new Error(`benchmarks only target loopback, not ${options.url}`);
  const args = ['-c', String(options.core), 'ab', '-k', '-q', '-c', String(options.connections), '-t', String(options.durationSeconds), '-n', '100000000'];
  if (options.proxyPort !== undefined) args.push('-X', `127.0.0.1:${options.proxyPort}`);
  for (const [name, value] of Object.entries(options.headers)) args.push('-H', `${name}: ${value}`);
  const { stdout } = await run('taskset', [...args, options.url], { maxBuffer: 1 << 24 });
  const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? NaN);
  const complete = number(/^Complete requests:\s+(\d+)/m);
  const failed = number(/^Failed requests:\s+(\d+)/m);
  const non2xx = /^Non-2xx responses:\s+(\d+)/m.exec(stdout);
  const seconds = number(/^Time taken for tests:\s+([\d.]+) seconds/m);
  const failures = failed + (non2xx === null ? 0 : Number(non2xx[1]));
  return {
    okPerSecond: (complete - failures) / seconds,
    p50Ms: number(/^\s+50%\s+(\d+)/m),
    p99Ms: number(/^\s+99%\s+(\d+)/m),
    failures,
  };
}
