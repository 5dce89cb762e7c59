import t from 'tap';
import { createExitServer } from '../../exit/exit-server.js';
import { createDestinationPolicy } from '../../lib/http/destination-policy.js';
import { createLogger } from '../../lib/logger.js';
import { generateToken } from '../../lib/secret-format.js';
import { waitFor } from '../helpers/deadline.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

// Exits are "direct" here so the node itself resolves and checks destinations.
const world = await startWorld({ exitCountries: [] });
t.teardown(() => world.close());
await world.cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
const node = await world.startNode({ allowPrivateDestinations: false });
const { key } = await world.createKey();

const policy = createDestinationPolicy({ allowPrivate: false });

// [address, why]: every spelling of a refused range, and the IPv6 forms that carry an IPv4 address.
const refusedAddresses: [string, string][] = [
  ['127.0.0.1', 'loopback'],
  ['10.0.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['169.254.169.254', 'metadata (link-local)'],
  ['100.64.0.1', 'carrier-grade NAT'],
  ['0.0.0.0', 'this network'],
  ['224.0.0.1', 'multicast'],
  ['255.255.255.255', 'broadcast'],
  ['192.0.2.1', 'documentation'],
  ['198.18.0.1', 'benchmarking'],
  ['192.88.99.1', '6to4 relay anycast'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback, written out'],
  ['::7f00:1', 'IPv4-compatible 127.0.0.1'],
  ['::127.0.0.1', 'IPv4-compatible, dotted'],
  ['::a00:1', 'IPv4-compatible 10.0.0.1'],
  ['::8.8.8.8', 'IPv4-compatible (deprecated, never routed)'],
  ['::ffff:127.0.0.1', 'IPv4-mapped, dotted'],
  ['::FFFF:7F00:1', 'IPv4-mapped, hex, upper case'],
  ['0:0:0:0:0:ffff:7f00:1', 'IPv4-mapped, written out'],
  ['0000:0000:0000:0000:0000:ffff:7f00:0001', 'IPv4-mapped, zero-padded'],
  ['::ffff:a9fe:a9fe', 'IPv4-mapped metadata address'],
  ['::ffff:0:127.0.0.1', 'IPv4-translated'],
  ['::ffff:0:808:808', 'IPv4-translated (not routed)'],
  ['64:ff9b::7f00:1', 'NAT64 of 127.0.0.1'],
  ['64:ff9b::10.0.0.1', 'NAT64 of 10.0.0.1, dotted'],
  ['64:ff9b::a9fe:a9fe', 'NAT64 of the metadata address'],
  ['64:ff9b:1::1', 'local-use NAT64'],
  ['2002:7f00:1::1', '6to4 of 127.0.0.1'],
  ['2002:c0a8:101::1', '6to4 of 192.168.1.1'],
  ['2002:a9fe:a9fe::', '6to4 of the metadata address'],
  ['2001:0:7f00:1::1', 'Teredo with a loopback server'],
  ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'Teredo with client 10.0.0.1'],
  ['2001:0000:4136:e378:8000:63bf:3fff:fdd2', 'Teredo with a documentation client'],
  ['fec0::1', 'site-local'],
  ['feff::1', 'site-local, top'],
  ['fc00::1', 'unique-local'],
  ['fd12:3456::1', 'unique-local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local with a zone'],
  ['ff02::1', 'multicast'],
  ['100::1', 'discard-only'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['2001:2::1', 'benchmarking'],
  ['2001:10::1', 'ORCHID'],
  ['5f00::1', 'outside global unicast'],
  ['4000::1', 'unassigned'],
];

const allowedAddresses: [string, string][] = [
  ['93.184.216.34', 'public IPv4'],
  ['172.32.0.1', 'just past 172.16.0.0/12'],
  ['2606:4700:4700::1111', 'global unicast'],
  ['2001:4860:4860::8888', 'global unicast in 2001::/16'],
  ['::ffff:8.8.8.8', 'IPv4-mapped public address'],
  ['::ffff:808:808', 'IPv4-mapped public address, hex'],
  ['64:ff9b::808:808', 'NAT64 of a public address'],
  ['2002:808:808::1', '6to4 of a public address'],
  ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'Teredo with public server and client'],
];

t.test('the destination policy refuses every spelling of a refused range', async (t) => {
  for (const [address, why] of refusedAddresses) t.ok(policy.forbids(address, 443), `${address} is refused (${why})`);
  for (const [address, why] of allowedAddresses) t.notOk(policy.forbids(address, 443), `${address} is allowed (${why})`);
  t.ok(policy.forbids('[::ffff:7f00:1]', 443), 'a bracketed literal is judged by its address');
  t.ok(policy.forbids('93.184.216.34', 25), 'port 25 is refused whatever the address');
});

t.test('IPv6 forms of private addresses are refused end to end', async (t) => {
  for (const url of ['http://[::7f00:1]/', 'http://[64:ff9b::7f00:1]/', 'http://[2002:7f00:1::1]/', 'http://[fec0::1]/', 'http://[0:0:0:0:0:ffff:7f00:1]/']) {
    const response = await proxyRequest(node.port, url, bearer(key));
    t.equal(response.status, 403, url);
    t.equal(response.headers['x-portcullis-error'], 'destination_forbidden');
  }
});

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
  const exit = await createExitServer({ id: 'exit-guarded', country: 'NL', token: generateToken(), allowPrivateDestinations: false, logger: createLogger({ level: 'silent', name: 'exit' }) });
  t.teardown(() => exit.close());
  await world.cp.request('POST', '/v1/pools', { body: { name: 'guarded', exits: [{ country: 'NL', url: exit.poolUrl }] } });
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
