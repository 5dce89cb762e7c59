import t from 'tap';
import { createExitServer } from '../../exit/exit-server.js';
import { createLogger } from '../../lib/logger.js';
import { waitFor } from '../helpers/deadline.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

// Exits are "direct" here so the node itself resolves and checks destinations.
const world = await startWorld({ exitCountries: [] });
t.teardown(() => world.close());
await world.cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
const node = await world.startNode({ allowPrivateDestinations: false });
const { key } = await world.createKey();

const forbidden = [
  'http://127.0.0.1/',
  'http://localhost/',
  'http://10.1.2.3/',
  'http://192.168.0.1/',
  'http://172.16.5.4/',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::1]/',
  'http://[::ffff:127.0.0.1]/',
  'http://0.0.0.0/',
  'http://metadata.google.internal/',
  'http://93.184.216.34:25/',
];

for (const url of forbidden) {
  t.test(`${url} → 403 destination_forbidden`, async (t) => {
    const response = await proxyRequest(node.port, url, bearer(key));
    t.equal(response.status, 403);
    t.equal(response.headers['x-portcullis-error'], 'destination_forbidden');
  });
}

t.test('a CONNECT to a private address or port 25 is refused', async (t) => {
  for (const authority of ['127.0.0.1:443', '10.0.0.1:443', 'example.com:25']) {
    const result = await proxyConnect(node.port, authority, bearer(key));
    t.equal(result.status, 403, authority);
    t.match(result.head, /X-Portcullis-Error: destination_forbidden/);
    result.socket.destroy();
  }
});

t.test('the resolved address is checked, not only the name', async (t) => {
  // Neither is an IP literal to the node; both resolve to 127.0.0.1.
  for (const url of ['http://127.1/', 'http://2130706433/']) {
    const response = await proxyRequest(node.port, url, bearer(key));
    t.equal(response.status, 403, url);
    t.equal(response.headers['x-portcullis-error'], 'destination_forbidden');
  }
});

t.test('through an upstream exit, the exit checks what the name resolves to and the node passes its 403 on', async (t) => {
  const exit = await createExitServer({ id: 'exit-guarded', country: 'NL', allowPrivateDestinations: false, logger: createLogger({ level: 'silent', name: 'exit' }) });
  t.teardown(() => exit.close());
  await world.cp.request('POST', '/v1/pools', { body: { name: 'guarded', exits: [{ country: 'NL', url: exit.url }] } });
  const viaExit = { ...bearer(key), 'proxy-pool': 'guarded' };
  await waitFor(async () => (await proxyRequest(node.port, 'http://127.1/', viaExit)).headers['x-portcullis-error'] !== 'pool_forbidden', {
    what: 'the node to load the new pool',
  });
  for (const url of ['http://127.1/', 'http://2130706433/']) {
    const response = await proxyRequest(node.port, url, viaExit);
    t.equal(response.status, 403, url);
    t.equal(response.headers['x-portcullis-error'], 'destination_forbidden');
  }
  const tunnel = await proxyConnect(node.port, '127.1:443', viaExit);
  t.equal(tunnel.status, 403, 'CONNECT too');
  t.match(tunnel.head, /X-Portcullis-Error: destination_forbidden/);
  tunnel.socket.destroy();
  t.equal(exit.stats().tunnels, 0, 'no tunnel was opened');
});
