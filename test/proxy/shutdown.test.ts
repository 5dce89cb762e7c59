import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '../helpers/deadline.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
const { key } = await world.createKey();

t.test('close() stops accepting, lets an open request finish, then closes', async (t) => {
  let release: (() => void) | undefined;
  const slow = http.createServer((_request, response) => {
    release = () => response.end('finished');
  });
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  t.teardown(() => slow.close());
  const node = await world.startNode();
  const inFlight = proxyRequest(node.port, `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`, bearer(key));
  await waitFor(() => release !== undefined, { what: 'the request to reach the origin' });
  const closing = node.close(10_000);
  await waitFor(async () => (await proxyRequest(node.port, `${world.origin.url}/`, bearer(key)).then(() => false, () => true)), {
    what: 'new connections to be refused',
  });
  release!();
  const response = await inFlight;
  t.equal(response.status, 200);
  t.equal(response.body, 'finished', 'the open request completed');
  await closing;
});
