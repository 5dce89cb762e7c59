import t from 'tap';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { readGreeting, readLogin, readRequest } from '../../proxy/ingress/socks-messages.js';
import { deadline, waitFor, within } from '../helpers/deadline.js';
import { startWorld } from '../helpers/world.js';

const run = promisify(execFile);
const world = await startWorld({ exitCountries: ['DE', 'US'] });
t.teardown(() => world.close());
// Long enough for a login whose key the node must first verify with the control plane.
const HANDSHAKE_MS = deadline(2_000);
const timeouts = { connectMs: 2_000, responseMs: 30_000, tunnelIdleMs: 60_000, requestHeadersMs: HANDSHAKE_MS, keepAliveMs: 5_000 };
const node = await world.startNode({ socksPort: 0, timeouts });
const guarded = await world.startNode({ socksPort: 0, allowPrivateDestinations: false });
const socksPort = node.socksPort!;
const originPort = Number(new URL(world.origin.url).port);
const { key, id: keyId } = await world.createKey();

/** A TCP echo server on `host`: what a tunnel carries comes back. */
async function startEcho(host: string): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
const echo4 = await startEcho('127.0.0.1');
const echo6 = await startEcho('::1');
t.teardown(() => Promise.all([echo4.close(), echo6.close()]));

/** Reads exactly `length` bytes. */
function readBytes(socket: net.Socket, length: number): Promise<Buffer> {
  return within(
    new Promise<Buffer>((resolve, reject) => {
      let received = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length < length) return;
        socket.off('data', onData);
        socket.off('close', onClose);
        if (received.length > length) socket.unshift(received.subarray(length));
        resolve(received.subarray(0, length));
      };
      const onClose = () => reject(new Error(`closed after ${received.length} of ${length} bytes`));
      socket.on('data', onData);
      socket.once('close', onClose);
    }),
    { what: `${length} bytes from the node` },
  );
}

const ipv4Address = (host: string, port: number) => Buffer.from([0x01, ...host.split('.').map(Number), port >> 8, port & 0xff]);
const domainAddress = (host: string, port: number) => Buffer.from([0x03, host.length, ...Buffer.from(host), port >> 8, port & 0xff]);
const ipv6Loopback = (port: number) => Buffer.from([0x04, ...new Array(15).fill(0), 1, port >> 8, port & 0xff]);

interface Handshake {
  socket: net.Socket;
  method: number;
  loginStatus?: number;
  reply?: number;
}

/**
 * A raw SOCKS5 client: greeting offering `methods`, the login, then a request of `command`
 * to `address`; stops at the first answer that ends the handshake.
 */
async function socksHandshake(port: number, { username = 'customer', password = key, methods = [0x02], command = 0x01, address = ipv4Address('127.0.0.1', echo4.port) } = {}): Promise<Handshake> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(Buffer.from([0x05, methods.length, ...methods]));
  const [, method] = await readBytes(socket, 2);
  if (method !== 0x02) return { socket, method: method! };
  socket.write(Buffer.concat([Buffer.from([0x01, username.length]), Buffer.from(username, 'latin1'), Buffer.from([password.length]), Buffer.from(password, 'latin1')]));
  const [, loginStatus] = await readBytes(socket, 2);
  if (loginStatus !== 0) return { socket, method, loginStatus };
  socket.write(Buffer.concat([Buffer.from([0x05, command, 0x00]), address]));
  const reply = await readBytes(socket, 10);
  return { socket, method, loginStatus, reply: reply[1]! };
}

const closed = (socket: net.Socket) => within(new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve()))), { what: 'the node to close the connection' });

t.test('the message readers wait for whole messages and refuse what is not SOCKS5', async (t) => {
  t.equal(readGreeting(Buffer.from([0x05])), 'more');
  t.same(readGreeting(Buffer.from([0x05, 0x02, 0x00, 0x02])), { length: 4, offersLogin: true });
  t.equal(readGreeting(Buffer.from('GET / HTTP/1.1\r\n')), 'invalid', 'an HTTP request');
  t.equal(readGreeting(Buffer.from([0x04, 0x01])), 'invalid', 'SOCKS4');
  t.same(readLogin(Buffer.from([0x01, 0x01, 0x61, 0x01, 0x62])), { length: 5, username: 'a', password: 'b' });
  t.equal(readLogin(Buffer.from([0x01, 0x01, 0x61])), 'more');
  const request = Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), domainAddress('example.com', 443)]);
  for (let cut = 0; cut < request.length; cut++) t.equal(readRequest(request.subarray(0, cut)), 'more', `request cut at ${cut}`);
  t.same(readRequest(request), { length: request.length, command: 1, knownAddressType: true, target: { hostname: 'example.com', port: 443, authority: 'example.com:443' } });
  t.same(readRequest(Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), ipv6Loopback(80)])), {
    length: 22,
    command: 1,
    knownAddressType: true,
    target: { hostname: '0:0:0:0:0:0:0:1', port: 80, authority: '[0:0:0:0:0:0:0:1]:80' },
  });
  t.equal((readRequest(Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), ipv4Address('1.2.3.4', 0)])) as { target: unknown }).target, undefined, 'port 0 is no destination');
});

t.test('curl --socks5-hostname and --socks5 reach the origin, with username targeting', async (t) => {
  const viaHostname = await run('curl', ['-sS', '--socks5-hostname', `127.0.0.1:${socksPort}`, '--proxy-user', `customer:${key}`, `http://localhost:${originPort}/socks-hostname`]);
  t.equal(JSON.parse(viaHostname.stdout).url, '/socks-hostname', 'a domain name resolved by the node');
  const viaAddress = await run('curl', ['-sS', '--socks5', `127.0.0.1:${socksPort}`, '--proxy-user', `customer:${key}`, `${world.origin.url}/socks-address`]);
  t.equal(JSON.parse(viaAddress.stdout).url, '/socks-address', 'an IPv4 address');
  for (const [index, country] of ['de', 'us'].entries()) {
    const tunnelsBefore = world.exits.map((exit) => exit.stats().tunnels);
    const { stdout } = await run('curl', ['-sS', '-x', `socks5h://customer-country-${country}:${key}@127.0.0.1:${socksPort}`, `${world.origin.url}/geo`]);
    t.equal(JSON.parse(stdout).url, '/geo');
    const tunnelsAfter = world.exits.map((exit) => exit.stats().tunnels);
    t.same(tunnelsAfter.map((count, i) => count - tunnelsBefore[i]!), index === 0 ? [1, 0] : [0, 1], `-country-${country} goes through that country's exit`);
  }
  const { stdout } = await run('curl', ['-sS', '-x', `socks5h://${key}:@127.0.0.1:${socksPort}`, `${world.origin.url}/key-as-username`]);
  t.equal(JSON.parse(stdout).url, '/key-as-username', 'the key as the username with an empty password');
});

t.test("Python's socket module speaks SOCKS5 to an IPv6 echo server through the node", async (t) => {
  const script = `
import socket, struct, sys
key = sys.argv[1].encode()
s = socket.create_connection(("127.0.0.1", ${socksPort}), timeout=10)
s.sendall(b"\\x05\\x01\\x02")
assert s.recv(2) == b"\\x05\\x02"
s.sendall(b"\\x01\\x08customer" + bytes([len(key)]) + key)
assert s.recv(2) == b"\\x01\\x00"
s.sendall(b"\\x05\\x01\\x00\\x04" + socket.inet_pton(socket.AF_INET6, "::1") + struct.pack(">H", ${echo6.port}))
reply = s.recv(10)
assert reply[1] == 0, reply
s.sendall(b"hello over ipv6")
print(s.recv(100).decode())
`;
  const { stdout } = await run('python3', ['-c', script, key]);
  t.equal(stdout.trim(), 'hello over ipv6');
});

t.test('a bad key fails the login; a client offering no username/password is told no method is acceptable', async (t) => {
  const refused = await socksHandshake(socksPort, { password: `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}` });
  t.equal(refused.loginStatus, 0x01, 'RFC 1929 failure');
  await closed(refused.socket);
  const anonymous = await socksHandshake(socksPort, { methods: [0x00] });
  t.equal(anonymous.method, 0xff);
  await closed(anonymous.socket);
  const seen = world.origin.seen.length;
  await t.rejects(run('curl', ['-sS', '--socks5-hostname', `127.0.0.1:${socksPort}`, '--proxy-user', 'customer:sk_live_nope', `${world.origin.url}/never`]), 'curl fails');
  t.equal(world.origin.seen.length, seen, 'nothing reached the origin');
});

t.test('only CONNECT, and only the three address types', async (t) => {
  const bind = await socksHandshake(socksPort, { command: 0x02 });
  t.equal(bind.reply, 0x07, 'BIND: command not supported');
  const udp = await socksHandshake(socksPort, { command: 0x03 });
  t.equal(udp.reply, 0x07, 'UDP ASSOCIATE: command not supported');
  const unknownType = await socksHandshake(socksPort, { address: Buffer.from([0x05, 1, 2, 3, 4, 0, 80]) });
  t.equal(unknownType.reply, 0x08, 'address type not supported');
  for (const handshake of [bind, udp, unknownType]) await closed(handshake.socket);
});

t.test('destination policy and targeting refusals answer "not allowed by ruleset"', async (t) => {
  const forbidden = await socksHandshake(guarded.socksPort!);
  t.equal(forbidden.reply, 0x02, 'loopback refused by a node that forbids private destinations');
  await t.rejects(run('curl', ['-sS', '--socks5', `127.0.0.1:${guarded.socksPort}`, '--proxy-user', `customer:${key}`, `${world.origin.url}/forbidden`]));
  const limited = await world.createKey({ countries: ['US'] });
  const wrongCountry = await socksHandshake(socksPort, { username: 'customer-country-de', password: limited.key });
  t.equal(wrongCountry.loginStatus, 0x00, 'the key is good');
  t.equal(wrongCountry.reply, 0x02, 'country_forbidden');
  const noExit = await socksHandshake(socksPort, { username: 'customer-country-fr' });
  t.equal(noExit.reply, 0x03, 'no_exit: network unreachable');
});

t.test('a SOCKS tunnel is admitted, limited and metered like a CONNECT', async (t) => {
  const capped = await world.createKey({ concurrency: { perNode: 1 } });
  const first = await socksHandshake(socksPort, { password: capped.key });
  t.equal(first.reply, 0x00);
  const second = await socksHandshake(socksPort, { password: capped.key });
  t.equal(second.reply, 0x02, 'concurrency_exceeded: not allowed');
  t.equal(node.openTunnels(), 1, 'counted among open tunnels');
  first.socket.write('ping');
  t.equal((await readBytes(first.socket, 4)).toString(), 'ping', 'bytes flow both ways');
  first.socket.destroy();
  await waitFor(() => node.openTunnels() === 0, { what: 'the tunnel to close' });
  const third = await socksHandshake(socksPort, { password: capped.key });
  t.equal(third.reply, 0x00, 'the slot came back');
  third.socket.destroy();

  const metered = await socksHandshake(socksPort);
  metered.socket.write('x'.repeat(1000));
  await readBytes(metered.socket, 1000);
  metered.socket.destroy();
  await waitFor(
    async () => {
      await node.flushUsage();
      const response = await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${keyId}/usage?granularity=day&from=${new Date(Date.now() - 86_400_000 * 2).toISOString()}`);
      const totals = response.body.data.reduce((sum: { up: number; down: number }, point: { bytesUp: number; bytesDown: number }) => ({ up: sum.up + point.bytesUp, down: sum.down + point.bytesDown }), { up: 0, down: 0 });
      return totals.up >= 1000 && totals.down >= 1000;
    },
    { what: 'the tunnel bytes in usage' },
  );
});

t.test("revoking a key closes its open SOCKS tunnels", async (t) => {
  const doomed = await world.createKey();
  const open = await socksHandshake(socksPort, { password: doomed.key });
  t.equal(open.reply, 0x00);
  await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${doomed.id}/revoke`);
  await closed(open.socket);
  const again = await socksHandshake(socksPort, { password: doomed.key });
  t.equal(again.loginStatus, 0x01, 'the revoked key fails the login');
});

t.test('a handshake that stalls or overflows is closed', async () => {
  const connect = (bytes: Buffer | string | undefined) => {
    const socket = net.connect(socksPort, '127.0.0.1');
    socket.on('error', () => {});
    // Read what the node says, so its closing is seen.
    socket.resume();
    if (bytes !== undefined) socket.write(bytes);
    return socket;
  };
  await closed(connect(undefined));
  await closed(connect(Buffer.from([0x05, 0x01, 0x02, 0x01, 0x08])));
  await closed(connect(Buffer.concat([Buffer.from([0x05, 0xff]), Buffer.alloc(2_000)])));
  await closed(connect('GET / HTTP/1.1\r\n\r\n'));
});

t.test('shutting a node down ends SOCKS handshakes at once and its tunnels at the deadline', async (t) => {
  const closing = await world.startNode({ socksPort: 0, timeouts });
  const tunnel = await socksHandshake(closing.socksPort!);
  t.equal(tunnel.reply, 0x00);
  const handshaking = net.connect(closing.socksPort!, '127.0.0.1');
  handshaking.on('error', () => {});
  handshaking.resume();
  await waitFor(() => closing.openConnections() === 2, { what: 'both connections to be open' });
  const shutDown = within(closing.close(200), { what: 'the node to close' });
  await within(new Promise<void>((resolve) => handshaking.once('close', () => resolve())), { what: 'the handshake to be ended' });
  await within(new Promise<void>((resolve) => (tunnel.socket.destroyed ? resolve() : tunnel.socket.once('close', () => resolve()))), { what: 'the tunnel to be ended' });
  await shutDown;
  t.equal(closing.openConnections(), 0);
});
