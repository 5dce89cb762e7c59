/**
 * `npm run bench:profile`: where a proxy node's CPU goes. Builds the project, runs the
 * compiled node (dist/, so frames carry their real lines) under `--cpu-prof` pinned to
 * core 0, sends it plain-HTTP load (wrk, or autocannon), then CONNECT setups, then CONNECT
 * tunnels with a bulk download, and prints the functions with the most self time for each.
 * The raw .cpuprofile files (open them in Chrome DevTools) go to bench/results/.
 *
 * Settings: BENCH_DURATION (seconds of HTTP load, 10), BENCH_CONNECTIONS (50).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startTestControlPlane } from '../test/helpers/control-plane.js';
import { freePort } from '../test/helpers/ports.js';
import { pinSelf, startProcess } from '../test/helpers/processes.js';
import { startRedis } from '../test/helpers/redis.js';
import { measureConnectRate } from './lib/connect-rate.js';
import { runLoad } from './lib/load.js';
import { printTable } from './lib/table.js';
import { measureTunnelThroughput } from './lib/tunnel-throughput.js';
import { hasWrk, runWrk } from './lib/wrk.js';
import { startBenchNode } from './lib/bench-node.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const TOP = 25;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

/** Self time per function (name, file and line), as a share of all samples. */
function topFrames(path: string): { frame: string; share: number }[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as { nodes: ProfileNode[] };
  const total = profile.nodes.reduce((sum, node) => sum + node.hitCount, 0);
  const byFrame = new Map<string, number>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^file:\/\//, '').replace(`${resolve('.')}/`, '').replace(/^dist\//, '').replace(/^.*node_modules\//, '');
    const frame = `${functionName || '(anonymous)'} ${file === '' ? '' : `${file}:${lineNumber + 1}`}`.trim();
    byFrame.set(frame, (byFrame.get(frame) ?? 0) + node.hitCount);
  }
  return [...byFrame]
    .map(([frame, hits]) => ({ frame, share: hits / total }))
    .sort((a, b) => b.share - a.share)
    .slice(0, TOP);
}

interface Targets {
  originPort: number;
  bulkPort: number;
  tcpPort: number;
}

async function profileNode(title: string, load: (nodePort: number, key: string, targets: Targets) => Promise<void>): Promise<void> {
  const dir = resolve(`bench/results/profile-${title.replace(/\W+/g, '-')}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const cp = await startTestControlPlane();
  const redis = await startRedis();
  const origin = await startProcess({ core: 1, entry: 'bench/servers/origin.ts', args: ['1024', String(2 ** 30)], ready: /^\{.*\}$/m });
  const { http: originPort, bulk: bulkPort, tcp: tcpPort } = JSON.parse(/^\{.*\}$/m.exec(origin.output())![0]) as Record<string, number>;
  try {
    await cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
    const team = await cp.createTeam('profile');
    const key = (await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'profile' } })).body.key as string;
    const nodePort = await freePort();
    const node = await startBenchNode({
      controlPlaneUrl: cp.url,
      nodeToken: cp.nodeToken,
      redisUrl: redis.url,
      port: nodePort,
      core: 0,
      command: [process.execPath, '--cpu-prof', `--cpu-prof-dir=${dir}`, 'dist/bin/portcullis.js'],
    });
    await load(nodePort, key, { originPort, bulkPort, tcpPort });
    await node.stop();
    const [file] = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'));
    printTable(
      `Self time in the node under ${title}`,
      topFrames(join(dir, file!)).map((entry) => ({ function: entry.frame, 'self %': Math.round(entry.share * 1000) / 10 })),
    );
    process.stdout.write(`profile: ${join(dir, file!)}\n\n`);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  } finally {
    await origin.stop();
    await redis.close();
    await cp.close();
  }
}

pinSelf(1);
execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
await profileNode(`plain HTTP at ${CONNECTIONS} connections`, async (nodePort, key, { originPort }) => {
  const headers = { host: `127.0.0.1:${originPort}`, 'Proxy-Authorization': `Bearer ${key}` };
  const path = `http://127.0.0.1:${originPort}/`;
  const connectTo = `http://127.0.0.1:${nodePort}`;
  if (hasWrk()) await runWrk({ title: 'profile', connectTo, path, headers, connections: CONNECTIONS, durationSeconds: DURATION, core: 1 });
  else await runLoad({ title: 'profile', url: connectTo, path, headers, connections: CONNECTIONS, durationSeconds: DURATION });
});
await profileNode('CONNECT setup (connect, CONNECT, one reply, close)', async (nodePort, key, { tcpPort }) => {
  await measureConnectRate(nodePort, `127.0.0.1:${tcpPort}`, { 'Proxy-Authorization': `Bearer ${key}` }, 50, DURATION);
});
await profileNode('bulk downloads through CONNECT tunnels', async (nodePort, key, { bulkPort }) => {
  for (let i = 0; i < 3; i++) await measureTunnelThroughput(nodePort, `127.0.0.1:${bulkPort}`, { 'Proxy-Authorization': `Bearer ${key}` });
});
