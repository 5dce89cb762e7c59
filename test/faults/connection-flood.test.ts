import t from 'tap';
import { deadline, waitFor } from '../helpers/deadline.js';
import { startProcessWorld } from '../helpers/process-world.js';
import { startProcess } from '../helpers/processes.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';

/**
 * 10,000 connections that never say anything and 300 that send their headers a few bytes
 * at a time (slowloris), all held open against one node process. Promise: other clients are
 * still served promptly, and the node lets go of every one of those connections.
 */

const IDLE = 10_000;
const SLOW = 300;
// Room for every held connection on both sides, and then some.
const FILE_LIMIT = IDLE + SLOW + 2_000;

const world = await startProcessWorld();
t.teardown(() => world.close());
const { origin } = world;
const { key } = await world.createKey();
const node = await world.startNode({ fileLimit: FILE_LIMIT });

async function openFiles(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  return Number(/^process_open_fds (\d+)/m.exec(text)![1]);
}

/** Milliseconds for each of `count` requests and tunnels, one after another, each on a new connection. */
async function serveTimes(count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = Date.now();
    if (i % 2 === 0) {
      const response = await proxyRequest(node.port, `${origin.url}/served/${i}`, bearer(key));
      if (response.status !== 200) throw new Error(`request ${i}: ${response.status}`);
    } else {
      const tunnel = await proxyConnect(node.port, `127.0.0.1:${origin.port}`, bearer(key));
      tunnel.socket.destroy();
      if (tunnel.status !== 200) throw new Error(`tunnel ${i}: ${tunnel.status}`);
    }
    times.push(Date.now() - started);
  }
  return times.sort((a, b) => a - b);
}

const summary = (times: number[]) => `median ${times[Math.floor(times.length / 2)]} ms, slowest ${times.at(-1)} ms`;

t.test('10,000 idle connections and a slowloris of 300: other clients are served promptly', async (t) => {
  const before = await serveTimes(20);
  const filesBefore = await openFiles();
  const holder = await startProcess({
    entry: 'test/helpers/hold-connections.ts',
    args: [String(node.port), String(IDLE), String(SLOW)],
    ready: /"all open"/,
    fileLimit: FILE_LIMIT,
  });
  t.teardown(() => holder.kill('SIGKILL'));
  await waitFor(async () => (await openFiles()) >= IDLE + SLOW, { what: 'the node to hold every connection' });

  const during = await serveTimes(40);
  t.ok(during.at(-1)! < deadline(1_000), `with ${IDLE} idle and ${SLOW} slow connections held: ${summary(during)} (before: ${summary(before)})`);

  await holder.kill('SIGKILL');
  await waitFor(async () => (await openFiles()) <= filesBefore + 50, { what: 'the node to let go of every held connection' });
  t.pass('the node let go of them all');
});
