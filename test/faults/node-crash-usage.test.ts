import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { deadline, waitFor } from '../helpers/deadline.js';
import { startProcessWorld } from '../helpers/process-world.js';
import type { ProxyProcess } from '../helpers/processes.js';
import { startTraffic } from '../helpers/traffic.js';

/**
 * A node process killed outright, restarted under the same NODE_ID, then stopped with
 * SIGTERM, all while traffic flows; what the origin served is compared with what the usage
 * API reports. Promise: SIGTERM loses nothing; SIGKILL loses at most what was metered since
 * the last flush, one USAGE_FLUSH_MS; the restarted process's usage is counted, not taken
 * for retries of the first one's.
 */

const FLUSH_MS = 500;
const BODY_BYTES = 2_000;
const NODE_ID = 'node-pod-0';

const world = await startProcessWorld();
t.teardown(() => world.close());
const { cp, team } = world;

/** What the origin finished sending, per path prefix, with when. */
const served: { life: string; at: number; bytes: number }[] = [];
const origin = http.createServer((request, response) => {
  const life = request.url!.split('/')[1]!;
  response.once('finish', () => served.push({ life, at: Date.now(), bytes: BODY_BYTES }));
  response.end('o'.repeat(BODY_BYTES));
});
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
t.teardown(() => origin.close());
const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;

const startNode = () => world.startNode({ env: { NODE_ID, USAGE_FLUSH_MS: String(FLUSH_MS), SHUTDOWN_DEADLINE_MS: '10000' } });

/** Bytes sent down to clients and requests, as the usage API reports them for a key. */
async function usageOf(keyId: string): Promise<{ bytesDown: number; requests: number }> {
  const from = new Date(Date.now() - 2 * 86_400_000).toISOString();
  const response = await waitFor(
    async () => {
      const answer = await cp.request('GET', `/v1/teams/${team.id}/keys/${keyId}/usage?granularity=day&from=${from}`);
      return answer.status === 200 && answer;
    },
    { what: 'the usage API to answer' },
  );
  const points: { bytesDown: number; requests: number }[] = response.body.data;
  return points.reduce((sum, point) => ({ bytesDown: sum.bytesDown + point.bytesDown, requests: sum.requests + point.requests }), { bytesDown: 0, requests: 0 });
}

const servedBy = (life: string) => served.filter((entry) => entry.life === life);

/** Runs traffic through the node until `flushes` flush intervals' worth has been served, then `end`s the node under it. */
async function trafficUntil(node: ProxyProcess, key: string, life: string, end: () => Promise<unknown>): Promise<{ endedAt: number }> {
  const traffic = startTraffic({ ports: () => [node.port], keyFor: () => key, url: `${originUrl}/${life}/`, concurrency: 8 });
  const started = Date.now();
  await waitFor(() => Date.now() - started > 4 * FLUSH_MS && servedBy(life).length > 50, { what: `${life}: traffic over several flush intervals` });
  const endedAt = Date.now();
  await end();
  await traffic.stop();
  return { endedAt };
}

const [first, second] = [await world.createKey(), await world.createKey()];
let killedAt = 0;

t.test('a node process is SIGKILLed under traffic', async (t) => {
  const node = await startNode();
  ({ endedAt: killedAt } = await trafficUntil(node, first.key, 'first', () => node.kill('SIGKILL')));
  t.ok(servedBy('first').length > 0, `killed after ${servedBy('first').length} requests`);
});

t.test('restarted under the same NODE_ID and stopped with SIGTERM under traffic: its usage is exact', async (t) => {
  const node = await startNode();
  let stoppedIn = 0;
  await trafficUntil(node, second.key, 'second', async () => {
    const started = Date.now();
    await node.kill('SIGTERM');
    stoppedIn = Date.now() - started;
  });
  t.ok(stoppedIn < deadline(5_000), `exited ${stoppedIn} ms after SIGTERM`);
  const expected = { bytesDown: servedBy('second').length * BODY_BYTES, requests: servedBy('second').length };
  t.same(await usageOf(second.id), expected, `every byte and request the origin served in the second life is reported (${expected.requests} requests)`);
});

t.test('SIGKILL lost at most one flush interval of usage', async (t) => {
  // By now anything the first life sent before it died has long arrived.
  const reported = await usageOf(first.id);
  const servedFirst = servedBy('first');
  const lostBytes = servedFirst.length * BODY_BYTES - reported.bytesDown;
  t.ok(lostBytes >= 0, 'nothing reported that the origin did not serve');
  // The loss, in time: the shortest stretch before the kill in which the origin served that much.
  const newestFirst = servedFirst.filter((entry) => entry.at <= killedAt).sort((a, b) => b.at - a.at);
  let covered = 0;
  let lostMs = 0;
  for (const entry of newestFirst) {
    if (covered >= lostBytes) break;
    covered += entry.bytes;
    lostMs = killedAt - entry.at;
  }
  const allowedMs = FLUSH_MS + deadline(250);
  t.ok(lostMs <= allowedMs, `SIGKILL lost ${lostBytes} bytes, ${servedFirst.length - reported.requests} requests: the last ${lostMs} ms of traffic (flush interval ${FLUSH_MS} ms)`);
});
