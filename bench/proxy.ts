/**
 * `npm run bench:proxy`: in one run, side by side — requests straight to a local origin, a
 * bare proxy-chain server (no auth), and our node with a cached key (direct egress, and
 * chained through a `portcullis exit`), at 50 and 500 keep-alive connections; CONNECT
 * tunnel setup rate; and the cost of one auth decision on a cache hit. The proxy under
 * test runs pinned to core 0, the load generator and origin on core 1.
 */
import { createRedisPublisher } from '../lib/feed/redis-bus.js';
import { freePort } from '../test/helpers/ports.js';
import { startRedis } from '../test/helpers/redis.js';
import { startTestControlPlane } from '../test/helpers/control-plane.js';
import { measureAuthDecision } from './lib/auth-micro.js';
import { measureLimiterDecision } from './lib/limiter-micro.js';
import { pinSelf, startProcess, type ChildServer } from '../test/helpers/processes.js';
import { measureConnectRate } from './lib/connect-rate.js';
import { loadRow, runLoad, type LoadResult } from './lib/load.js';
import { printTable, saveResults } from './lib/table.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '50,500').split(',').map(Number);

pinSelf(1);
const children: ChildServer[] = [];
const portOf = (child: ChildServer) => JSON.parse(/^\{.*\}$/m.exec(child.output())![0]) as Record<string, number>;
const redis = await startRedis();
const cp = await startTestControlPlane({ publishers: new Map([['bench', createRedisPublisher({ url: redis.url })]]) });

try {
  const origin = await startProcess({ core: 1, entry: 'bench/servers/origin.ts', args: ['1024'], ready: /^\{.*\}$/m });
  children.push(origin);
  const { http: originPort, tcp: tcpPort } = portOf(origin);
  const bare = await startProcess({ core: 0, entry: 'bench/servers/bare-proxy-chain.ts', ready: /^\{.*\}$/m });
  children.push(bare);
  const barePort = portOf(bare).port!;

  const exitPort = await freePort();
  children.push(await startProcess({ core: 1, entry: 'bin/portcullis.ts', args: ['exit'], env: { COUNTRY: 'DE', PORT: String(exitPort), ALLOW_PRIVATE_DESTINATIONS: 'true', LOG_LEVEL: 'info' }, ready: /exit listening/ }));
  await cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
  await cp.request('POST', '/v1/pools', { body: { name: 'chained', exits: [{ country: 'DE', url: `http://127.0.0.1:${exitPort}` }] } });
  const team = await cp.createTeam('bench');
  const directKey = (await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'direct', pools: ['direct'] } })).body.key as string;
  const chainedKey = (await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'chained', pools: ['chained'] } })).body.key as string;
  // A limit far above what the machine can send: every request pays for the decision, none is refused.
  const limitedKey = (
    await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'limited', pools: ['direct'], rateLimit: { requestsPerSecond: 1_000_000, burst: 1_000_000 } } })
  ).body.key as string;

  const nodePort = await freePort();
  const node = await startProcess({
    core: 0,
    entry: 'bin/portcullis.ts',
    args: ['proxy'],
    env: {
      REGION: 'bench',
      REDIS_URL: redis.url,
      CONTROL_PLANE_URL: cp.url,
      NODE_TOKEN: cp.nodeToken,
      PORT: String(nodePort),
      METRICS_PORT: String(await freePort()),
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      LOG_LEVEL: 'info',
    },
    ready: /proxy node listening/,
  });
  children.push(node);

  const originUrl = `http://127.0.0.1:${originPort}/`;
  const host = `127.0.0.1:${originPort}`;
  const proxied = (port: number, key?: string) => ({
    url: `http://127.0.0.1:${port}`,
    path: originUrl,
    headers: { host, ...(key !== undefined && { 'proxy-authorization': `Bearer ${key}` }) },
  });
  const targets = [
    { title: 'direct to origin (no proxy)', url: originUrl, headers: {} as Record<string, string>, path: undefined as string | undefined },
    { title: 'bare proxy-chain, no auth', ...proxied(barePort) },
    { title: 'portcullis node, cached key, direct egress', ...proxied(nodePort, directKey) },
    { title: 'portcullis node → portcullis exit', ...proxied(nodePort, chainedKey) },
    { title: 'portcullis node, rate limit on (Redis)', ...proxied(nodePort, limitedKey) },
  ];
  // Warm the key cache and the keep-alive pools.
  for (const target of targets) await runLoad({ ...target, connections: 10, durationSeconds: 1 });

  const results: { result: LoadResult; bare: LoadResult | undefined; unlimited: LoadResult | undefined }[] = [];
  for (const connections of CONNECTIONS) {
    let bareResult: LoadResult | undefined;
    let unlimitedResult: LoadResult | undefined;
    for (const target of targets) {
      const result = await runLoad({ ...target, connections, durationSeconds: DURATION });
      if (target.title.startsWith('bare')) bareResult = result;
      if (target.title.includes('direct egress')) unlimitedResult = result;
      results.push({ result, bare: bareResult, unlimited: unlimitedResult });
    }
  }
  const rows = results.map(({ result, bare, unlimited }) =>
    loadRow(result, {
      'vs proxy-chain': result.title.startsWith('portcullis') && bare !== undefined ? `${(result.okPerSecond / bare.okPerSecond).toFixed(2)}×` : '',
      'vs limit off': result.title.includes('rate limit on') && unlimited !== undefined ? `${(result.okPerSecond / unlimited.okPerSecond).toFixed(2)}×` : '',
    }),
  );
  printTable(`Plain HTTP through the proxy, 1 KiB responses, ${DURATION} s per run`, rows);

  const connectRows = [];
  for (const [title, port, headers] of [
    ['bare proxy-chain, no auth', barePort, {}],
    ['portcullis node, cached key', nodePort, { 'Proxy-Authorization': `Bearer ${directKey}` }],
  ] as const) {
    const rate = await measureConnectRate(port, `127.0.0.1:${tcpPort}`, headers, 50, Math.min(DURATION, 5));
    connectRows.push({ scenario: title, 'tunnels/s': Math.round(rate.tunnelsPerSecond), 'p50 ms': rate.p50Ms, 'p99 ms': rate.p99Ms, failures: rate.failures });
  }
  printTable('CONNECT tunnel setup (50 concurrent clients, connect + CONNECT + one reply + close)', connectRows);

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
  process.stdout.write(`results: ${saveResults('proxy', { results, connectRows, micro, limiter })}\n`);
} finally {
  await Promise.all(children.map((child) => child.stop()));
  await cp.close();
  await redis.close();
}
