import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { waitFor } from '../helpers/deadline.js';
import { metricValue } from '../helpers/metrics.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
const { key } = await world.createKey();
const openTunnels = () => metricValue(world.node.metrics.registry, 'portcullis_proxy_open_tunnels');

/** A TCP server echoing bytes back, as the far end of tunnels. */
const echo = net.createServer((socket) => socket.pipe(socket));
await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
t.teardown(() => echo.close());
const echoPort = (echo.address() as net.AddressInfo).port;

t.test('a tunnel carries bytes both ways and a client that disconnects mid-tunnel leaves nothing open', async (t) => {
  const tunnel = await proxyConnect(world.node.port, `127.0.0.1:${echoPort}`, bearer(key));
  t.equal(tunnel.status, 200);
  const echoed = new Promise<string>((resolve) => tunnel.socket.once('data', (chunk) => resolve(chunk.toString())));
  tunnel.socket.write('ping');
  t.equal(await echoed, 'ping');
  t.equal(await openTunnels(), 1);
  t.equal(world.exits[0]!.stats().openTunnels, 1);
  tunnel.socket.destroy();
  await waitFor(async () => (await openTunnels()) === 0, { what: 'the node to close the tunnel' });
  await waitFor(() => world.exits[0]!.stats().openTunnels === 0, { what: 'the exit to close the tunnel' });
  t.pass('both sides closed');
});

t.test('a client that disconnects mid-body leaves no socket behind', async (t) => {
  const before = world.exits[0]!.stats().requests;
  const request = http.request({
    host: '127.0.0.1',
    port: world.node.port,
    method: 'POST',
    path: `${world.origin.url}/slow-upload`,
    headers: { ...bearer(key), 'content-length': '1000000' },
  });
  request.on('error', () => {});
  request.write('x'.repeat(1000));
  await waitFor(() => world.exits[0]!.stats().requests > before, { what: 'the upload to reach the exit' });
  t.equal(world.node.openConnections(), 1);
  request.destroy();
  await waitFor(() => world.node.openConnections() === 0, { what: 'the node to drop the aborted connection' });
  // The node is still healthy afterwards.
  t.equal((await proxyRequest(world.node.port, `${world.origin.url}/after`, bearer(key))).status, 200);
});

t.test('many tunnels opened and abandoned at once all close', async (t) => {
  const tunnels = await Promise.all(Array.from({ length: 40 }, () => proxyConnect(world.node.port, `127.0.0.1:${echoPort}`, bearer(key))));
  t.ok(tunnels.every((tunnel) => tunnel.status === 200));
  await waitFor(async () => (await openTunnels()) === 40, { what: '40 open tunnels' });
  for (const tunnel of tunnels) tunnel.socket.destroy();
  await waitFor(async () => (await openTunnels()) === 0, { what: 'every tunnel closed' });
  t.pass();
});
