import t from 'tap';
import net from 'node:net';
import { waitFor } from '../helpers/deadline.js';
import { metricValue } from '../helpers/metrics.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';
import { startTcpSwitch } from '../helpers/tcp-switch.js';

const world = await startRegions(['eu']);
t.teardown(() => world.close());
const link = await startTcpSwitch(world.cp.port);
t.teardown(() => link.close());
const steady = await world.startNode('eu');
const flaky = await world.startNode('eu', { controlPlaneUrl: link.url });
const { id, key } = await world.createKey();

/** What the far side actually served and received, counted there. */
const served = { bytesDown: 0, bytesUp: 0 };
const TUNNEL_DOWNLOAD = 50_000;
// Answers once the client has sent something, so nothing arrives before the client listens.
const source = net.createServer((socket) => {
  let answered = false;
  socket.on('data', (chunk) => {
    served.bytesUp += chunk.length;
    if (answered) return;
    answered = true;
    socket.write(Buffer.alloc(TUNNEL_DOWNLOAD, 'd'), () => (served.bytesDown += TUNNEL_DOWNLOAD));
  });
});
await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
t.teardown(() => source.close());
const sourcePort = (source.address() as net.AddressInfo).port;

async function httpTraffic(port: number, count: number, bodyBytes: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const body = bodyBytes > 0 ? 'u'.repeat(bodyBytes + i) : undefined;
    const response = await proxyRequest(port, `${world.origin.url}/metered/${i}`, bearer(key), body === undefined ? {} : { method: 'POST', body });
    if (response.status !== 200) throw new Error(`status ${response.status}`);
    served.bytesDown += Buffer.byteLength(response.body);
    served.bytesUp += body === undefined ? 0 : Buffer.byteLength(body);
  }
}

async function tunnelTraffic(port: number, upload: number): Promise<void> {
  const tunnel = await proxyConnect(port, `127.0.0.1:${sourcePort}`, bearer(key));
  if (tunnel.status !== 200) throw new Error(`tunnel ${tunnel.status}`);
  let received = 0;
  tunnel.socket.on('data', (chunk: Buffer | string) => (received += Buffer.byteLength(chunk as string, 'latin1')));
  tunnel.socket.write(Buffer.alloc(upload, 'p'));
  await waitFor(() => received >= TUNNEL_DOWNLOAD, { what: 'the tunnel download' });
  await waitFor(() => served.bytesUp >= upload, { what: 'the upload to arrive' });
  await new Promise<void>((resolve) => {
    tunnel.socket.once('close', () => resolve());
    tunnel.socket.destroy();
  });
}

async function usageTotals() {
  const response = await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${id}/usage?granularity=day&from=${new Date(Date.now() - 86_400_000 * 2).toISOString()}`);
  return response.body.data.reduce(
    (sum: { bytesUp: number; bytesDown: number; requests: number; tunnels: number }, point: typeof sum) => ({
      bytesUp: sum.bytesUp + point.bytesUp,
      bytesDown: sum.bytesDown + point.bytesDown,
      requests: sum.requests + point.requests,
      tunnels: sum.tunnels + point.tunnels,
    }),
    { bytesUp: 0, bytesDown: 0, requests: 0, tunnels: 0 },
  );
}

t.test('usage totals equal what the far side served, through a control plane outage and a node shutdown', async (t) => {
  await httpTraffic(steady.port, 10, 0);
  await httpTraffic(flaky.port, 5, 3_000);
  await tunnelTraffic(steady.port, 5_000);

  // The flaky node loses the control plane while traffic keeps flowing (its key is cached).
  link.cut();
  await httpTraffic(flaky.port, 10, 1_000);
  await tunnelTraffic(flaky.port, 2_000);
  await flaky.flushUsage();
  await waitFor(async () => (await metricValue(flaky.metrics.registry, 'portcullis_proxy_usage_pending_bytes')) > 0, {
    what: 'the node to hold undelivered usage',
  });
  link.restore();

  // The steady node is shut down (SIGTERM's path): its last usage goes out first.
  await httpTraffic(steady.port, 7, 500);
  await steady.close(5_000);

  const expected = { bytesUp: served.bytesUp, bytesDown: served.bytesDown, requests: 32, tunnels: 2 };
  const totals = await waitFor(
    async () => {
      await flaky.flushUsage();
      const current = await usageTotals();
      return JSON.stringify(current) === JSON.stringify(expected) ? current : undefined;
    },
    { what: `usage to equal ${JSON.stringify(expected)}`, timeoutMs: 15_000 },
  );
  t.same(totals, expected, 'bytes both ways, requests and tunnels all accounted for, none twice');
  t.equal(await metricValue(flaky.metrics.registry, 'portcullis_proxy_usage_pending_bytes'), 0, 'nothing left pending');
  const keyView = await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${id}`);
  t.type(keyView.body.lastUsedAt, 'string', 'last used is set');
  t.equal(keyView.body.monthlyUsedBytes, expected.bytesUp + expected.bytesDown, "the key shows this month's bytes, up and down");
});

t.test('a usage batch sent twice is counted once', async (t) => {
  const { id: otherId } = await world.createKey();
  const batch = { nodeId: 'replay-node', batch: 1, entries: [{ keyId: otherId, teamId: world.team.id, bytesIn: 10, bytesOut: 20, requests: 1, tunnels: 0 }] };
  const first = await world.cp.request('POST', '/internal/v1/usage', { token: world.cp.nodeToken, body: batch });
  const again = await world.cp.request('POST', '/internal/v1/usage', { token: world.cp.nodeToken, body: batch });
  t.equal(first.body.duplicate, false);
  t.equal(again.body.duplicate, true);
  const usage = await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${otherId}/usage`);
  t.same(usage.body.data.map((point: any) => [point.bytesUp, point.bytesDown]), [[10, 20]], "the node's bytes in are up, its bytes out are down");
});

t.test('the usage API validates its range', async (t) => {
  const inverted = await world.cp.request('GET', `/v1/teams/${world.team.id}/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`);
  t.equal(inverted.body.error.code, 'range_invalid');
  const tooLong = await world.cp.request('GET', `/v1/teams/${world.team.id}/usage?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&granularity=hour`);
  t.equal(tooLong.body.error.code, 'range_too_long');
  const team = await world.cp.request('GET', `/v1/teams/${world.team.id}/usage?granularity=day&from=${new Date(Date.now() - 86_400_000).toISOString()}`);
  t.equal(team.status, 200);
  t.ok(team.body.data.length >= 1, 'team usage is the sum over its keys');
});
