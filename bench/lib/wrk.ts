import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LoadResult } from './load.js';

const run = promisify(execFile);

/** True when wrk is installed (`apt-get install wrk`): a C load generator, far lighter than one in Node. */
export function hasWrk(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

export interface WrkOptions {
  title: string;
  /** Where wrk connects: the proxy, or the origin itself. */
  connectTo: string;
  /** The request target: an absolute URL for a proxy, a path for the origin. */
  path: string;
  headers: Record<string, string>;
  connections: number;
  durationSeconds: number;
  /** Pin wrk to this core. */
  core: number;
}

const luaString = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

function milliseconds(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (match === null) return NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

/** One wrk run (a single thread, pinned); only 2xx answers count as throughput. */
export async function runWrk(options: WrkOptions): Promise<LoadResult> {
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(options.connectTo)) throw new Error(`benchmarks only target loopback, not ${options.connectTo}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-wrk-'));
  const script = join(dir, 'request.lua');
  // wrk.path may be an absolute URL: that is how a client talks to a forward proxy.
  writeFileSync(
    script,
    [`wrk.path = ${luaString(options.path)}`, ...Object.entries(options.headers).map(([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`), ''].join('\n'),
  );
  try {
    const { stdout } = await run(
      'taskset',
      ['-c', String(options.core), 'wrk', '-t1', `-c${options.connections}`, `-d${options.durationSeconds}s`, '--timeout', '10s', '--latency', '-s', script, options.connectTo],
      { maxBuffer: 1 << 20 },
    );
    const total = Number(/(\d+) requests in ([\d.]+)(\w+)/.exec(stdout)?.[1] ?? 0);
    const seconds = milliseconds(`${/\d+ requests in ([\d.]+\w+)/.exec(stdout)?.[1] ?? '0s'}`) / 1000;
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    const percentile = (p: string) => milliseconds(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(stdout)?.[1] ?? '');
    return {
      title: options.title,
      connections: options.connections,
      okPerSecond: (total - non2xx) / (seconds || options.durationSeconds),
      p50Ms: percentile('50'),
      p99Ms: percentile('99'),
      non2xx,
      errors: socket === null ? 0 : Number(socket[1]) + Number(socket[2]) + Number(socket[3]),
      timeouts: socket === null ? 0 : Number(socket[4]),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
