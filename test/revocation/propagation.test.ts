import t from 'tap';
import { deadline, waitFor, within } from '../helpers/deadline.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';

const world = await startRegions(['us', 'eu', 'ap']);
t.teardown(() => world.close());
const nodes = [await world.startNode('us'), await world.startNode('us'), await world.startNode('eu'), await world.startNode('ap')];

t.test('a revoked key is refused by every node in every region within 1 s, with traffic flowing', async (t) => {
  const { id, key } = await world.createKey();
  for (const node of nodes) t.equal((await proxyRequest(node.port, `${world.origin.url}/warm`, bearer(key))).status, 200, `${node.nodeId} serves the key`);

  // Keep requests flowing through every node while the key is revoked; the revocation
  // cuts some of them mid-flight, which is the point.
  let flowing = true;
  const traffic = nodes.map(async (node) => {
    while (flowing) await proxyRequest(node.port, `${world.origin.url}/flow`, bearer(key)).catch(() => undefined);
  });
  const revokedAt = Date.now();
  const revoke = await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
  t.equal(revoke.status, 200);

  const refusedAfter = await Promise.all(
    nodes.map((node) =>
      waitFor(
        async () => {
          const response = await proxyRequest(node.port, `${world.origin.url}/check`, bearer(key));
          return response.headers['x-portcullis-error'] === 'key_revoked' ? Date.now() - revokedAt : undefined;
        },
        { what: `${node.nodeId} to refuse the revoked key`, timeoutMs: 1_000 },
      ),
    ),
  );
  flowing = false;
  await Promise.all(traffic);
  t.ok(Math.max(...refusedAfter) <= deadline(1_000), `slowest node refused after ${Math.max(...refusedAfter)} ms`);

  const status = await waitFor(
    async () => {
      const response = await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${id}/revocation`);
      return response.body.complete === true ? response.body : undefined;
    },
    { what: 'the revocation endpoint to report complete' },
  );
  t.equal(status.liveNodes, 4);
  t.same(status.regions.map((region: any) => [region.region, region.applied, region.total]).sort(), [['ap', 1, 1], ['eu', 1, 1], ['us', 2, 2]]);
  for (const region of status.regions) {
    t.equal(region.published, true, `published to ${region.region}`);
    for (const node of region.nodes) t.type(node.afterMs, 'number', `${node.nodeId} reports its delay`);
  }
  t.type(status.slowestMs, 'number');
});

t.test('a CONNECT tunnel streaming with the key is cut by the revocation', async (t) => {
  const { id, key } = await world.createKey();
  const tunnel = await proxyConnect(nodes[2]!.port, `127.0.0.1:${world.origin.port}`, bearer(key));
  t.equal(tunnel.status, 200);
  tunnel.socket.write(`GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await new Promise((resolve) => tunnel.socket.once('data', resolve));
  const closed = new Promise<number>((resolve) => tunnel.socket.once('close', () => resolve(Date.now())));
  const revokedAt = Date.now();
  await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
  const cutAfter = (await within(closed, { what: 'the tunnel to be cut', timeoutMs: 1_000 })) - revokedAt;
  t.ok(cutAfter <= deadline(1_000), `tunnel cut ${cutAfter} ms after the revoke`);
  const status = await waitFor(
    async () => {
      const response = await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${id}/revocation`);
      return response.body.complete === true ? response.body : undefined;
    },
    { what: 'complete' },
  );
  const eu = status.regions.find((region: any) => region.region === 'eu');
  t.equal(eu.nodes[0].closedConnections, 1, 'the node reports the connection it closed');
});

t.test("the revocation's activity entry links to its propagation status", async (t) => {
  const { id } = await world.createKey();
  await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
  const activity = await world.cp.request('GET', `/v1/teams/${world.team.id}/activity?limit=1`);
  t.equal(activity.body.data[0].action, 'key.revoked');
  const link = activity.body.data[0].details.revocation;
  t.equal((await world.cp.request('GET', link)).status, 200);
});
