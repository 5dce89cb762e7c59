import t from 'tap';
import net from 'node:net';
import { deadline, waitFor, within } from '../helpers/deadline.js';
import { startProcessWorld } from '../helpers/process-world.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import type { ProxyProcess } from '../helpers/processes.js';
import { startTraffic } from '../helpers/traffic.js';

/**
 * `portcullis proxy` with WORKERS=2, as a real process. Promise: the workers share the
 * node's one port and its one metrics port; a revocation counts as applied on the node
 * (its propagation proof) only once both workers applied it, and a revoked key's tunnels
 * are closed whichever worker holds them; a worker that dies is replaced while traffic
 * goes on; SIGTERM drains every worker within the deadline. A key's per-node cap is exact
 * for the node as a whole (the primary counts the slots), and a dead worker's slots come back.
 */

const world = await startProcessWorld();
t.teardown(() => world.close());
const url = `${world.origin.url}/`;

// Answers what it is sent, so a tunnel shows whether it still stands.
const echo = net.createServer((socket) => socket.on('data', (chunk) => socket.write(chunk)).on('error', () => {}));
await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => echo.close(() => resolve())));
const echoAuthority = `127.0.0.1:${(echo.address() as net.AddressInfo).port}`;

const startNode = (env: Record<string, string> = {}) => world.startNode({ env: { WORKERS: '2', REPORT_INTERVAL_MS: '200', ...env } });

/** The workers listening now, by pid, from their log lines. */
function workerPids(node: ProxyProcess): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of node.logLines()) if (line.msg === 'proxy worker listening') pids.set(Number(line.worker), Number(line.pid));
  return pids;
}

async function metrics(node: ProxyProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
}

/** The sum of every series of a metric. */
function total(text: string, name: string): number {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((sum, match) => sum + Number(match[1]), 0);
}

/**
 * Whether a tunnel carries data (`open`), was closed (`closed`), or stands without answering
 * (`silent`: its worker is stopped). Silence can only be seen by waiting, so that one outcome
 * takes a window from the shared time limits; callers poll the other two with `waitFor`.
 */
function probe(socket: net.Socket): Promise<'open' | 'closed' | 'silent'> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve('closed');
  return new Promise((resolve) => {
    const onData = () => finish('open');
    const onEnd = () => finish('closed');
    const timer = setTimeout(() => finish('silent'), deadline(500));
    const finish = (result: 'open' | 'closed' | 'silent') => {
      clearTimeout(timer);
      socket.off('data', onData).off('close', onEnd).off('end', onEnd);
      resolve(result);
    };
    socket.once('data', onData).once('close', onEnd).once('end', onEnd);
    socket.write('ping');
  });
}

const probeAll = (sockets: net.Socket[]) => Promise.all(sockets.map(probe));

const node = await startNode();

t.test('two workers serve one port; the node has one metrics port with both workers counted', async (t) => {
  const pids = workerPids(node);
  t.equal(new Set(pids.values()).size, 2, `two worker processes (${[...pids.values()].join(', ')})`);
  t.ok(!pids.has(node.pid) && ![...pids.values()].includes(node.pid), 'apart from the primary');
  const { key } = await world.createKey();
  const before = total(await metrics(node), 'portcullis_proxy_requests_total');
  const statuses = [];
  // A connection each: the primary hands connections to the workers in turn.
  for (let i = 0; i < 40; i++) statuses.push((await proxyRequest(node.port, url, bearer(key))).status);
  t.same(new Set(statuses), new Set([200]), 'every request served');
  const text = await metrics(node);
  t.equal(total(text, 'portcullis_proxy_requests_total') - before, 40, "the node's metrics count the requests of both workers");
  t.match(text, /^portcullis_proxy_workers\{state="ready"\} 2$/m, 'and say both workers are ready');
  t.equal((await fetch(`http://127.0.0.1:${node.metricsPort}/readyz`)).status, 200, 'the node is ready');
});

t.test("a revocation's proof is complete only once both workers applied it; its tunnels close in both", async (t) => {
  const { id, key } = await world.createKey();
  const tunnels: net.Socket[] = [];
  for (let i = 0; i < 6; i++) {
    const tunnel = await proxyConnect(node.port, echoAuthority, bearer(key));
    t.teardown(() => tunnel.socket.destroy());
    tunnels.push(tunnel.socket);
  }
  t.same(await probeAll(tunnels), Array(6).fill('open'), 'six tunnels open');
  const [first, second] = [...workerPids(node).values()];
  // The second worker stops dead: it cannot apply anything until it is continued.
  process.kill(second!, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(second!, 'SIGCONT');
    } catch {
      // already gone
    }
  });
  const revokedAt = Date.now();
  const revoked = await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
  t.equal(revoked.status, 200);

  const status = async () => (await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${id}/revocation`)).body;
  const ours = (body: any) => body.regions.flatMap((region: any) => region.nodes).find((entry: any) => entry.nodeId === node.nodeId);
  // The running worker cut its tunnels; the node has reported several times since.
  await waitFor(async () => (await probeAll(tunnels)).includes('closed'), { what: "the running worker to close the key's tunnels" });
  await waitFor(async () => Date.parse(ours(await status())?.lastSeenAt ?? '0') > revokedAt + 1_000, { what: 'the node to report after the running worker applied the revocation' });
  const partial = await status();
  t.equal(ours(partial).applied, false, 'with one worker stopped, the node has not applied it');
  t.equal(partial.complete, false, 'and the revocation is not complete');
  const states = await probeAll(tunnels);
  const standing = states.filter((state) => state !== 'closed').length;
  t.ok(standing >= 1 && standing <= 5, `tunnels held by the stopped worker stand, the others are closed (${states.join(', ')})`);

  process.kill(second!, 'SIGCONT');
  const done = await waitFor(async () => {
    const body = await status();
    return body.complete === true && body;
  }, { what: 'the revocation to be complete once both workers applied it' });
  t.equal(ours(done).applied, true, 'the node applied it once its second worker did');
  t.equal(ours(done).closedConnections, 6, `closing the six tunnels of both workers between them (pids ${first} and ${second})`);
  await waitFor(async () => (await probeAll(tunnels)).every((state) => state === 'closed'), { what: 'every tunnel of the key to be closed' });
  t.pass('no tunnel of the key stands');
});

/** Opens tunnels for a key on as many connections at once; the statuses, and the tunnels that opened. */
async function openAtOnce(count: number, key: string): Promise<{ statuses: number[]; open: net.Socket[] }> {
  const results = await Promise.all(Array.from({ length: count }, () => proxyConnect(node.port, echoAuthority, bearer(key))));
  for (const result of results) if (result.status !== 200) result.socket.destroy();
  return { statuses: results.map((result) => result.status), open: results.filter((result) => result.status === 200).map((result) => result.socket) };
}

for (const perNode of [1, 3]) {
  t.test(`a key's per-node cap of ${perNode} is exact across the workers, and its slots come back when tunnels close`, async (t) => {
    const { key } = await world.createKey({ concurrency: { perNode } });
    const first = await openAtOnce(8, key);
    t.teardown(() => first.open.forEach((socket) => socket.destroy()));
    t.equal(first.open.length, perNode, `${perNode} of 8 tunnels opened at once open on the node (${first.statuses.join(' ')})`);
    t.ok(first.statuses.every((status) => status === 200 || status === 429), 'the others refused with 429 concurrency_exceeded');
    t.same(await probeAll(first.open), Array(perNode).fill('open'), 'the open ones carry data');
    const more = await openAtOnce(4, key);
    t.equal(more.open.length, 0, `none more while they stand (${more.statuses.join(' ')})`);

    first.open.forEach((socket) => socket.destroy());
    // Closing is seen by the workers a moment later; each try gives back what it opened.
    let again: { statuses: number[]; open: net.Socket[] } = { statuses: [], open: [] };
    await waitFor(async () => {
      again.open.forEach((socket) => socket.destroy());
      again = await openAtOnce(8, key);
      return again.open.length === perNode;
    }, { what: `${perNode} slots to come back once the tunnels closed` });
    t.teardown(() => again.open.forEach((socket) => socket.destroy()));
    t.equal(again.open.length, perNode, `${perNode} open again (${again.statuses.join(' ')})`);
  });
}

t.test('a worker SIGKILLed is replaced while traffic goes on', async (t) => {
  const { key } = await world.createKey();
  const traffic = startTraffic({ ports: () => [node.port], keyFor: () => key, url, concurrency: 2 });
  t.teardown(() => traffic.stop());
  await waitFor(() => traffic.samples.length > 50, { what: 'traffic to flow' });
  const before = workerPids(node);
  process.kill(before.get(0)!, 'SIGKILL');
  const died = await node.waitForLog('proxy worker died: starting another in its place');
  t.equal(died.signal, 'SIGKILL', 'the death is logged with its signal');
  const replacement = await waitFor(() => {
    const now = workerPids(node).get(0);
    return now !== before.get(0) && now;
  }, { what: 'a new worker in its place', timeoutMs: 30_000 });
  const replacedAt = Date.now();
  await waitFor(() => traffic.samples.filter((sample) => sample.startedAt > replacedAt).length > 100, { what: 'traffic after the replacement' });
  const samples = await traffic.stop();
  const after = samples.filter((sample) => sample.startedAt > replacedAt);
  t.same(new Set(after.map((sample) => sample.status)), new Set([200]), `every request after the replacement (pid ${replacement}) served (${after.length})`);
  const text = await metrics(node);
  t.equal(total(text, 'portcullis_proxy_worker_restarts_total'), 1, 'the restart is counted');
  t.match(text, /^portcullis_proxy_workers\{state="ready"\} 2$/m, 'both workers ready again');
});

t.test("a worker SIGKILLed gives back the per-node slots it held", async (t) => {
  const perNode = 3;
  const { key } = await world.createKey({ concurrency: { perNode } });
  const { open } = await openAtOnce(perNode, key);
  t.teardown(() => open.forEach((socket) => socket.destroy()));
  t.equal(open.length, perNode, 'the cap is taken');
  let lost = 0;
  // The tunnels may all sit on one worker: kill each in turn until one held some.
  for (const index of [0, 1]) {
    const deaths = node.logLines().filter((line) => line.msg === 'proxy worker died: starting another in its place').length;
    const before = workerPids(node);
    process.kill(before.get(index)!, 'SIGKILL');
    await waitFor(() => node.logLines().filter((line) => line.msg === 'proxy worker died: starting another in its place').length > deaths, { what: `worker ${index}'s death to be seen` });
    await waitFor(() => {
      const now = workerPids(node).get(index);
      return now !== before.get(index) && now;
    }, { what: `a new worker ${index}`, timeoutMs: 30_000 });
    lost = (await probeAll(open)).filter((state) => state === 'closed').length;
    if (lost > 0) break;
  }
  t.ok(lost > 0 && lost <= perNode, `${lost} tunnels went with their worker`);
  const regained: net.Socket[] = [];
  await waitFor(async () => {
    const { open: opened } = await openAtOnce(1, key);
    regained.push(...opened);
    return regained.length >= lost;
  }, { what: `the ${lost} slots of the dead worker to come back` });
  t.teardown(() => regained.forEach((socket) => socket.destroy()));
  t.equal(regained.length, lost, 'as many open again as the worker held');
  const over = await openAtOnce(3, key);
  over.open.forEach((socket) => socket.destroy());
  t.equal(over.open.length, 0, `and no more than that: the cap is exact again (${over.statuses.join(' ')})`);
});

t.test('SIGTERM drains every worker within SHUTDOWN_DEADLINE_MS, then the node exits 0', async (t) => {
  const draining = await startNode({ SHUTDOWN_DEADLINE_MS: '1500' });
  const pids = [...workerPids(draining).values()];
  const { key } = await world.createKey();
  const tunnels: net.Socket[] = [];
  for (let i = 0; i < 2; i++) tunnels.push((await proxyConnect(draining.port, echoAuthority, bearer(key))).socket);
  t.teardown(() => tunnels.forEach((socket) => socket.destroy()));
  const sentAt = Date.now();
  draining.process.kill('SIGTERM');
  await draining.waitForLog('shutting down: draining');
  await waitFor(() => draining.logLines().filter((line) => line.msg === 'proxy worker draining').length === 2, { what: 'both workers to drain' });
  t.equal((await fetch(`http://127.0.0.1:${draining.metricsPort}/readyz`)).status, 503, 'not ready while draining');
  t.same(await probeAll(tunnels), ['open', 'open'], 'open tunnels keep working while they drain');
  const exit = await within(draining.exited, { what: 'the node to exit', timeoutMs: 6_000 });
  t.same(exit, { code: 0, signal: null }, `exited 0 after ${Date.now() - sentAt} ms (deadline 1500 ms)`);
  t.ok(Date.now() - sentAt < 1_500 + 2_500, 'within the deadline and a margin');
  t.same(
    pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    }),
    [],
    'no worker left behind',
  );
});
