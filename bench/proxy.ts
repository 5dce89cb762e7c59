/**
 * `npm run bench:proxy`: our node side by side with the baselines, in one run — straight to
 * a local origin, squid (when installed: `apt-get install squid`), bare proxy-chain (no
 * auth) — for plain HTTP at 50 and 500 keep-alive connections (and at 500 again with
 * latency read by ab, when apache2-utils is installed), CONNECT setup rate (and our SOCKS5
 * setup rate beside it), and bulk throughput through one tunnel with the CPU it costs;
 * then the auth decision on a cache
 * hit, the rate-limit decision, and heap bytes per cached key. Runs are interleaved (A, B,
 * C, A, B, C…) and reported as medians with their range, since the machine is shared. The
 * proxy under test runs pinned to core 0; the load generator (wrk when installed, else
 * autocannon) and the origin on core 1.
 *
 * Then plain HTTP through a node per worker count (WORKERS 1 and 2), with the scaling ratio
 * and requests per CPU-second of the node's processes together; `--workers` runs that alone
 * (BENCH_WORKERS sets the counts, 1,2 by default).
 *
 * Settings: BENCH_DURATION (seconds per HTTP run, 10), BENCH_ROUNDS (3),
 * BENCH_CONNECTIONS (50,500), BENCH_TUNNEL_BYTES (1 GiB).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createRedisPublisher } from '../lib/feed/redis-bus.js';
import { generateToken } from '../lib/secret-format.js';
import { startTestControlPlane } from '../test/helpers/control-plane.js';
import { freePort } from '../test/helpers/ports.js';
import { pinSelf, startProcess, type ChildServer } from '../test/helpers/processes.js';
import { startRedis } from '../test/helpers/redis.js';
import { seedUsableKeys } from '../test/helpers/seed-keys.js';
import { measureAuthDecision } from './lib/auth-micro.js';
import { measureConnectRate } from './lib/connect-rate.js';
import { cpuSecondsOfTree } from './lib/cpu.js';
import { interleave, median, medianWithRange, ratio } from './lib/interleave.js';
import { measureLimiterDecision } from './lib/limiter-micro.js';
import { measureSocksRate } from './lib/socks-rate.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { hasSquid, startSquid } from './lib/squid.js';
import { printTable, saveResults } from './lib/table.js';
import { measureTunnelThroughput } from './lib/tunnel-throughput.js';
import { measureWorkerScaling } from './lib/worker-scaling.js';
import { hasWrk, runWrk } from './lib/wrk.js';
import { startBenchNode } from './lib/bench-node.js';
import { hasAb, runAb } from './lib/ab.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '50,500').split(',').map(Number);
const TUNNEL_BYTES = Number(process.env.BENCH_TUNNEL_BYTES ?? 2 ** 30);
const GiB = 2 ** 30;
const WORKER_COUNTS = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number);
/** `npm run bench:proxy -- --workers`: only the table of worker counts (try it with BENCH_DURATION=2 BENCH_ROUNDS=1). */
const WORKERS_ONLY = process.argv.includes('--workers');

/** A proxy (or none) that the load is sent through. */
interface Contender {
  title: string;
  /** The proxy's port; undefined for traffic straight to the origin. */
  port: number | undefined;
  /** The process whose CPU the run costs. */
  pid: number | undefined;
  headers: Record<string, string>;
  /** Plain HTTP only (a second hop, or a limiter switched on): not in the CONNECT and tunnel tables. */
  httpOnly?: boolean;
}

pinSelf(1);
const useWrk = hasWrk();
const children: ChildServer[] = [];
const closers: (() => Promise<void>)[] = [];
const jsonOf = (child: ChildServer) => JSON.parse(/^\{.*\}$/m.exec(child.output())![0]) as Record<string, number>;
const redis = await startRedis();
const cp = await startTestControlPlane({ publishers: new Map([['bench', createRedisPublisher({ url: redis.url })]]) });

try {
  const origin = await startProcess({ core: 1, entry: 'bench/servers/origin.ts', args: ['1024', String(TUNNEL_BYTES)], ready: /^\{.*\}$/m });
  children.push(origin);
  const { http: originPort, tcp: tcpPort, bulk: bulkPort } = jsonOf(origin);
  const bare = await startProcess({ core: 0, entry: 'bench/servers/bare-proxy-chain.ts', ready: /^\{.*\}$/m });
  children.push(bare);
  const squid = hasSquid() ? await startSquid(0) : undefined;
  if (squid !== undefined) closers.push(() => squid.close());

  const exitPort = await freePort();
  const exitToken = generateToken();
  children.push(
    await startProcess({
      core: 1,
      entry: 'bin/portcullis.ts',
      args: ['exit'],
      env: { COUNTRY: 'DE', PORT: String(exitPort), EXIT_TOKEN: exitToken, ALLOW_PRIVATE_DESTINATIONS: 'true', LOG_LEVEL: 'info' },
      ready: /exit listening/,
    }),
  );
  await cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
  await cp.request('POST', '/v1/pools', { body: { name: 'chained', exits: [{ country: 'DE', url: `http://exit:${exitToken}@127.0.0.1:${exitPort}` }] } });
  const team = await cp.createTeam('bench');
  const keyFor = async (body: Record<string, unknown>) => (await cp.request('POST', `/v1/teams/${team.id}/keys`, { body })).body.key as string;
  const directKey = await keyFor({ name: 'direct', pools: ['direct'] });
  const chainedKey = await keyFor({ name: 'chained', pools: ['chained'] });
  // A limit far above what the machine can send: every request pays for the decision, none is refused.
  const limitedKey = await keyFor({ name: 'limited', pools: ['direct'], rateLimit: { requestsPerSecond: 1_000_000, burst: 1_000_000 } });

  const nodePort = await freePort();
  const socksPort = await freePort();
  const node = await startBenchNode({ controlPlaneUrl: cp.url, nodeToken: cp.nodeToken, redisUrl: redis.url, port: nodePort, core: 0, env: { SOCKS_PORT: String(socksPort) } });
  children.push(node);

  const bearer = (key: string) => ({ 'Proxy-Authorization': `Bearer ${key}` });
  const direct: Contender = { title: 'direct to origin (no proxy)', port: undefined, pid: undefined, headers: {} };
  const squidContender: Contender | undefined = squid === undefined ? undefined : { title: 'squid 5, no auth', port: squid.port, pid: squid.pid, headers: {} };
  const proxyChain: Contender = { title: 'bare proxy-chain, no auth', port: jsonOf(bare).port!, pid: bare.pid, headers: {} };
  const ours: Contender = { title: 'portcullis node, cached key, direct egress', port: nodePort, pid: node.pid, headers: bearer(directKey) };
  const limited: Contender = { title: 'portcullis node, rate limit on (Redis)', port: nodePort, pid: node.pid, headers: bearer(limitedKey), httpOnly: true };
  const chained: Contender = { title: 'portcullis node → portcullis exit', port: nodePort, pid: node.pid, headers: bearer(chainedKey), httpOnly: true };
  const contenders = [direct, ...(squidContender === undefined ? [] : [squidContender]), proxyChain, ours, limited, chained];
  const proxies = contenders.filter((contender) => contender.port !== undefined && contender.httpOnly !== true);

  const originUrl = `http://127.0.0.1:${originPort}/`;
  async function httpRun(contender: Contender, connections: number, durationSeconds: number): Promise<LoadResult & { cpuSeconds: number }> {
    const connectTo = `http://127.0.0.1:${contender.port ?? originPort}`;
    const headers = { host: `127.0.0.1:${originPort}`, ...contender.headers };
    const path = contender.port === undefined ? '/' : originUrl;
    const cpuBefore = contender.pid === undefined ? undefined : cpuSecondsOfTree(contender.pid);
    const result = useWrk
      ? await runWrk({ title: contender.title, connectTo, path, headers, connections, durationSeconds, core: 1 })
      : await runLoad({ title: contender.title, url: connectTo, path: contender.port === undefined ? undefined : originUrl, headers, connections, durationSeconds });
    const cpuAfter = contender.pid === undefined ? undefined : cpuSecondsOfTree(contender.pid);
    return { ...result, cpuSeconds: cpuBefore === undefined || cpuAfter === undefined ? NaN : cpuAfter - cpuBefore };
  }

  const scaling = await measureWorkerScaling({
    workerCounts: WORKER_COUNTS,
    nodeEnv: { REGION: 'bench', REDIS_URL: redis.url, CONTROL_PLANE_URL: cp.url, NODE_TOKEN: cp.nodeToken, ALLOW_PRIVATE_DESTINATIONS: 'true' },
    originUrl,
    headers: { host: `127.0.0.1:${originPort}`, ...bearer(directKey) },
    connections: CONNECTIONS[0]!,
    durationSeconds: DURATION,
    rounds: ROUNDS,
    useWrk,
  });
  printTable(
    `Plain HTTP through a node per WORKERS (${CONNECTIONS[0]} connections, not pinned: the load generator shares the ${cpus().length} cores), and requests per CPU-second of all its processes`,
    scaling.rows,
  );
  if (WORKERS_ONLY) {
    process.stdout.write(`results: ${saveResults('proxy-workers', { workerScaling: scaling.raw })}\n`);
  } else {
    // Warm the key cache, keep-alive pools and JIT of every contender.
    for (const contender of contenders) await httpRun(contender, 10, 1);

    const httpRows: Record<string, string | number>[] = [];
    const httpRaw: Record<string, unknown> = {};
    for (const connections of CONNECTIONS) {
      const runs = await interleave(contenders, ROUNDS, (contender) => httpRun(contender, connections, DURATION));
      const medianOk = (contender: Contender | undefined) => (contender === undefined ? undefined : median(runs.get(contender)!.map((run) => run.okPerSecond)));
      for (const contender of contenders) {
        const results = runs.get(contender)!;
        const okPerSecond = results.map((run) => run.okPerSecond);
        const isOurs = contender.title.startsWith('portcullis');
        const p99Bound = (2 * connections) / median(okPerSecond);
        httpRows.push({
          scenario: contender.title,
          conns: connections,
          'req/s (2xx)': medianWithRange(okPerSecond),
          'p99 ms': medianWithRange(results.map((run) => run.p99Ms), 1),
          'req per CPU-s': contender.pid === undefined ? '' : medianWithRange(results.map((run) => (run.okPerSecond * DURATION) / run.cpuSeconds)),
          'non-2xx': results.reduce((sum, run) => sum + run.non2xx + run.errors + run.timeouts, 0),
          'vs squid': isOurs ? ratio(median(okPerSecond), medianOk(squidContender)) : '',
          'vs proxy-chain': isOurs ? ratio(median(okPerSecond), medianOk(proxyChain)) : '',
          'p99 ≤ 2×conns/tput': isOurs ? (median(results.map((run) => run.p99Ms)) <= p99Bound * 1000 ? 'yes' : `no (${(p99Bound * 1000).toFixed(0)} ms)`) : '',
        });
        httpRaw[`${contender.title} @${connections}`] = results;
      }
    }
    printTable(`Plain HTTP through the proxy, 1 KiB responses, ${DURATION} s per run, ${ROUNDS} interleaved rounds, load by ${useWrk ? 'wrk' : 'autocannon'}`, httpRows);

    // The most connections again, with latency read by a second load generator.
    const manyConnections = Math.max(...CONNECTIONS);
    const abRuns = hasAb()
      ? await interleave([direct, ...proxies], ROUNDS, (contender) =>
          runAb({ proxyPort: contender.port, url: originUrl, headers: contender.headers, connections: manyConnections, durationSeconds: DURATION, core: 1 }),
        )
      : undefined;
    if (abRuns !== undefined) {
      const abRate = (contender: Contender | undefined) => (contender === undefined ? undefined : median(abRuns.get(contender)!.map((run) => run.okPerSecond)));
      printTable(
        `Plain HTTP at ${manyConnections} connections, load and latency by ab (keep-alive), ${DURATION} s per run, ${ROUNDS} interleaved rounds`,
        [direct, ...proxies].map((contender) => {
          const runs = abRuns.get(contender)!;
          const p99Bound = (2 * manyConnections) / abRate(contender)!;
          return {
            scenario: contender.title,
            'req/s (2xx)': medianWithRange(runs.map((run) => run.okPerSecond)),
            'p50 ms': medianWithRange(runs.map((run) => run.p50Ms)),
            'p99 ms': medianWithRange(runs.map((run) => run.p99Ms)),
            failures: runs.reduce((sum, run) => sum + run.failures, 0),
            'vs squid': contender === ours ? ratio(abRate(contender)!, abRate(squidContender)) : '',
            'p99 ≤ 2×conns/tput': contender === ours ? (median(runs.map((run) => run.p99Ms)) <= p99Bound * 1000 ? 'yes' : `no (${(p99Bound * 1000).toFixed(0)} ms)`) : '',
          };
        }),
      );
      httpRaw[`ab @${manyConnections}`] = Object.fromEntries([...abRuns].map(([contender, runs]) => [contender.title, runs]));
    }

    const connects = await interleave(proxies, ROUNDS, async (contender) => {
      const seconds = Math.min(DURATION, 5);
      const cpuBefore = cpuSecondsOfTree(contender.pid!) ?? NaN;
      const result = await measureConnectRate(contender.port!, `127.0.0.1:${tcpPort}`, contender.headers, 50, seconds);
      return { ...result, cpuSeconds: (cpuSecondsOfTree(contender.pid!) ?? NaN) - cpuBefore, seconds };
    });
    const connectRate = (contender: Contender | undefined) => (contender === undefined ? undefined : median(connects.get(contender)!.map((run) => run.tunnelsPerSecond)));
    // The same node, key, target and clients over SOCKS5: greeting, login and request are three round trips to CONNECT's one.
    const socksRuns = [];
    for (let round = 0; round < ROUNDS; round++) {
      const seconds = Math.min(DURATION, 5);
      const cpuBefore = cpuSecondsOfTree(node.pid) ?? NaN;
      const result = await measureSocksRate(socksPort, { host: '127.0.0.1', port: tcpPort! }, { username: 'bench', password: directKey }, 50, seconds);
      socksRuns.push({ ...result, cpuSeconds: (cpuSecondsOfTree(node.pid) ?? NaN) - cpuBefore, seconds });
    }
    const socksRate = median(socksRuns.map((run) => run.tunnelsPerSecond));
    printTable('CONNECT and SOCKS5 tunnel setup (50 concurrent clients: connect, CONNECT or SOCKS5 handshake, one reply, close)', [
      ...proxies.map((contender) => {
        const runs = connects.get(contender)!;
        const rate = connectRate(contender)!;
        return {
          scenario: contender.title,
          'tunnels/s': medianWithRange(runs.map((run) => run.tunnelsPerSecond)),
          'p99 ms': medianWithRange(runs.map((run) => run.p99Ms), 1),
          'tunnels per CPU-s': medianWithRange(runs.map((run) => (run.tunnelsPerSecond * run.seconds) / run.cpuSeconds)),
          failures: runs.reduce((sum, run) => sum + run.failures, 0),
          'vs squid': contender === ours ? ratio(rate, connectRate(squidContender)) : '',
          'vs proxy-chain': contender === ours ? ratio(rate, connectRate(proxyChain)) : '',
        };
      }),
      {
        scenario: 'portcullis node, SOCKS5 (username/password), cached key, direct egress',
        'tunnels/s': medianWithRange(socksRuns.map((run) => run.tunnelsPerSecond)),
        'p99 ms': medianWithRange(socksRuns.map((run) => run.p99Ms), 1),
        'tunnels per CPU-s': medianWithRange(socksRuns.map((run) => (run.tunnelsPerSecond * run.seconds) / run.cpuSeconds)),
        failures: socksRuns.reduce((sum, run) => sum + run.failures, 0),
        'vs our CONNECT': ratio(socksRate, connectRate(ours)),
      },
    ]);

    const tunnels = await interleave([direct, ...proxies], ROUNDS, async (contender) => {
      const cpuBefore = contender.pid === undefined ? undefined : cpuSecondsOfTree(contender.pid);
      const result = await measureTunnelThroughput(contender.port, `127.0.0.1:${bulkPort}`, contender.headers);
      const cpuAfter = contender.pid === undefined ? undefined : cpuSecondsOfTree(contender.pid);
      return { ...result, cpuSecondsPerGiB: cpuBefore === undefined || cpuAfter === undefined ? NaN : ((cpuAfter - cpuBefore) * GiB) / result.bytes };
    });
    const tunnelRate = (contender: Contender | undefined) => (contender === undefined ? undefined : median(tunnels.get(contender)!.map((run) => run.megabytesPerSecond)));
    printTable(
      `Bulk download through one CONNECT tunnel (${(TUNNEL_BYTES / GiB).toFixed(2)} GiB), and the proxy's CPU for it`,
      [direct, ...proxies].map((contender) => {
        const runs = tunnels.get(contender)!;
        return {
          scenario: contender.title,
          'MB/s': medianWithRange(runs.map((run) => run.megabytesPerSecond)),
          'CPU-s per GiB': contender.pid === undefined ? '' : medianWithRange(runs.map((run) => run.cpuSecondsPerGiB), 2),
          'vs squid': contender === ours ? ratio(tunnelRate(contender)!, tunnelRate(squidContender)) : '',
          'vs proxy-chain': contender === ours ? ratio(tunnelRate(contender)!, tunnelRate(proxyChain)) : '',
        };
      }),
    );

    const micro = await measureAuthDecision();
    printTable(
      'Auth decision on a cache hit (in-process micro-benchmark)',
      micro.map((entry) => ({ path: entry.name, 'µs per decision': entry.nsPerDecision / 1000, 'under 5 µs': entry.nsPerDecision < 5000 ? 'yes' : 'NO' })),
    );
    const limiter = await measureLimiterDecision(redis.url);
    printTable(
      'Rate-limit decision against Redis (GCRA Lua script, in-process)',
      limiter.map((entry) => ({ mode: entry.name, 'µs per decision': entry.microsecondsPerDecision, 'decisions/s': Math.round(entry.decisionsPerSecond) })),
    );
    const memory = [];
    for (const entries of [100_000, 1_000_000]) {
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/lib/key-cache-memory.ts', String(entries)], { maxBuffer: 1 << 20 });
      memory.push(JSON.parse(stdout) as { entries: number; bytesPerEntry: number; heapMb: number });
    }
    printTable(
      'Heap per cached key (key cache alone, answers parsed from JSON as a node receives them; 100 teams, 4 grant shapes)',
      memory.map((entry) => ({ 'cached keys': entry.entries, 'heap MB': entry.heapMb, 'bytes per key': Math.round(entry.bytesPerEntry), '≤ 500 B': entry.bytesPerEntry <= 500 ? 'yes' : 'NO' })),
    );
    // The whole node: every key verified, cached, admitted and metered through a real request.
    const nodeKeys = 100_000;
    const secrets = await seedUsableKeys(cp.adminDb, team.id, nodeKeys);
    const keysFile = join(mkdtempSync(join(tmpdir(), 'bench-keys-')), 'keys.txt');
    writeFileSync(keysFile, `${secrets.join('\n')}\n`);
    const { stdout: nodeMemoryOut } = await promisify(execFile)(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', 'bench/lib/node-memory.ts', cp.url, cp.nodeToken, redis.url, originUrl, keysFile],
      { maxBuffer: 1 << 20 },
    );
    rmSync(dirname(keysFile), { recursive: true, force: true });
    const nodeMemory = JSON.parse(nodeMemoryOut) as { keys: number; failed: number; bytesPerKey: number; heapMb: number };
    printTable('Heap per cached key in a whole node (one proxied request per key: verified, cached, admitted, metered)', [
      { 'cached keys': nodeMemory.keys, 'failed requests': nodeMemory.failed, 'heap MB': nodeMemory.heapMb, 'bytes per key': Math.round(nodeMemory.bytesPerKey), '≤ 500 B': nodeMemory.bytesPerKey <= 500 ? 'yes' : 'NO' },
    ]);
    process.stdout.write(`results: ${saveResults('proxy', { workerScaling: scaling.raw, nodeMemory, httpRaw, connects: Object.fromEntries([...connects].map(([c, r]) => [c.title, r])), socks: socksRuns, tunnels: Object.fromEntries([...tunnels].map(([c, r]) => [c.title, r])), micro, limiter, memory })}\n`);
  }
} finally {
  await Promise.all(children.map((child) => child.stop()));
  for (const close of closers) await close();
  await cp.close();
  await redis.close();
}
