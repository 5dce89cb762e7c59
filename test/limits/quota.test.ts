import t, { type Test } from 'tap';
import { deadline, waitFor, within } from '../helpers/deadline.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';

const world = await startRegions(['us', 'eu', 'ap']);
t.teardown(() => world.close());
const nodes = [await world.startNode('us'), await world.startNode('eu'), await world.startNode('ap')];

async function spendUntilRefused(key: string): Promise<number> {
  // Traffic through one region only; the quota is counted from every node's usage.
  for (;;) {
    const response = await proxyRequest(nodes[0]!.port, `${world.origin.url}/${'x'.repeat(500)}`, bearer(key));
    if (response.headers['x-portcullis-error'] === 'quota_exceeded') return Date.now();
    if (response.status !== 200) throw new Error(`unexpected ${response.status}`);
  }
}

async function refusedEverywhere(key: string, since: number): Promise<number> {
  await Promise.all(
    nodes.map((node) =>
      waitFor(
        async () => (await proxyRequest(node.port, `${world.origin.url}/`, bearer(key))).headers['x-portcullis-error'] === 'quota_exceeded',
        { what: `${node.nodeId} to refuse with quota_exceeded`, timeoutMs: 5_000 },
      ),
    ),
  );
  return Date.now() - since;
}

t.test('a key that uses up its monthly quota gets 429 quota_exceeded in every region within 5 s', async (t) => {
  const { id, key } = await world.createKey({ monthlyQuotaBytes: 20_000 });
  for (const node of nodes) t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(key))).status, 200);
  const start = Date.now();
  await spendUntilRefused(key);
  const elapsed = await refusedEverywhere(key, start);
  t.ok(elapsed <= deadline(5_000 + 5_000), `refused everywhere ${elapsed} ms after traffic started`);
  const refusal = await proxyRequest(nodes[2]!.port, `${world.origin.url}/`, bearer(key));
  t.equal(refusal.status, 429, 'a quota never answers 407');
  t.ok(Number(refusal.headers['retry-after']) > 0, 'Retry-After points at the next month');
  const activity = await world.cp.request('GET', `/v1/teams/${world.team.id}/activity?limit=20`);
  t.ok(activity.body.data.some((entry: any) => entry.action === 'key.quota_exceeded' && entry.target.id === id), 'the activity log says so');

  await world.cp.request('PATCH', `/v1/teams/${world.team.id}/keys/${id}`, { body: { monthlyQuotaBytes: 10_000_000 } });
  await Promise.all(
    nodes.map((node) =>
      waitFor(async () => (await proxyRequest(node.port, `${world.origin.url}/`, bearer(key))).status === 200, { what: `${node.nodeId} to serve again` }),
    ),
  );
  t.pass('raising the quota lets the key through again everywhere');
});

/** A CONNECT tunnel with the key through `node`, carrying a response that never ends; resolves when it is cut. */
async function streamingTunnel(t: Test, node: { port: number }, key: string, bytesPer20Ms = 0): Promise<{ cut: Promise<void> }> {
  const tunnel = await proxyConnect(node.port, `127.0.0.1:${world.origin.port}`, bearer(key));
  t.equal(tunnel.status, 200, 'tunnel open');
  t.teardown(() => tunnel.socket.destroy());
  tunnel.socket.write(`GET /stream?bytes=${bytesPer20Ms} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  tunnel.socket.resume();
  return { cut: new Promise((resolve) => tunnel.socket.once('close', () => resolve())) };
}

t.test('a tunnel streaming past its key quota is metered while open and cut within seconds', async (t) => {
  const { key } = await world.createKey({ monthlyQuotaBytes: 200_000 });
  const started = Date.now();
  // About 200 KB/s: the quota runs out after a second of streaming through a tunnel that never closes by itself.
  const { cut } = await streamingTunnel(t, nodes[1]!, key, 4_096);
  await within(cut, { what: 'the tunnel to be cut once the quota is used up', timeoutMs: 5_000 });
  t.ok(Date.now() - started <= deadline(5_000), `cut ${Date.now() - started} ms after it opened`);
  t.equal((await proxyRequest(nodes[1]!.port, `${world.origin.url}/`, bearer(key))).headers['x-portcullis-error'], 'quota_exceeded');
});

t.test("a team's monthly quota stops all of its keys in every region", async (t) => {
  const [first, second] = [await world.createKey(), await world.createKey()];
  for (const node of nodes) t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(second.key))).status, 200);
  // Usage of earlier tests may still be on its way: the team's total is read once it is all counted.
  await Promise.all(nodes.map((node) => node.flushUsage()));
  const { rows } = await world.cp.adminDb.query<{ bytes: number }>(
    `SELECT coalesce(sum(bytes), 0) AS bytes FROM usage_monthly WHERE subject_type = 'team' AND subject_id = $1`,
    [world.team.id],
  );
  const patched = await world.cp.request('PATCH', `/v1/teams/${world.team.id}`, { body: { monthlyQuotaBytes: Number(rows[0]!.bytes) + 20_000 } });
  t.equal(patched.status, 200);
  const { cut: secondTunnelCut } = await streamingTunnel(t, nodes[2]!, second.key);
  const start = Date.now();
  await spendUntilRefused(first.key);
  await refusedEverywhere(second.key, start);
  t.pass('another key of the team is refused everywhere too');
  await within(secondTunnelCut, { what: "the team's open tunnel to be cut", timeoutMs: 5_000 });
  t.pass('and the tunnel it had open is cut');
  const removed = await world.cp.request('PATCH', `/v1/teams/${world.team.id}`, { body: { monthlyQuotaBytes: null } });
  t.equal(removed.body.monthlyQuotaBytes, null);
  await Promise.all(
    nodes.map((node) =>
      waitFor(async () => (await proxyRequest(node.port, `${world.origin.url}/`, bearer(second.key))).status === 200, { what: `${node.nodeId} to serve the team again` }),
    ),
  );
});

t.test('only the platform admin sets a team quota', async (t) => {
  const response = await world.cp.request('PATCH', `/v1/teams/${world.team.id}`, { token: world.team.token, body: { monthlyQuotaBytes: 1 } });
  t.equal(response.status, 403);
});
