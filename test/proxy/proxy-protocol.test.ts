import t from 'tap';
import net from 'node:net';
import { parseProxyHeader } from '../../proxy/ingress/proxy-protocol.js';
import { deadline, waitFor, within } from '../helpers/deadline.js';
import { proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
const anyVersion = await world.startNode({ proxyProtocol: 'any', timeouts: { connectMs: 2_000, responseMs: 30_000, tunnelIdleMs: 60_000, requestHeadersMs: deadline(1_000), keepAliveMs: 5_000 } });
const v1Only = await world.startNode({ proxyProtocol: 'v1' });
const originPort = new URL(world.origin.url).port;
const url = `${world.origin.url}/proxied`;
// Keys that tell which address the node judged: a documentation range, and loopback.
const fromDocumentationRange = await world.createKey({ allowedClientCidrs: ['203.0.113.0/24', '2001:db8::/32'] });
const fromLoopback = await world.createKey({ allowedClientCidrs: ['127.0.0.0/8', '::1/128'] });

const v1 = (line: string) => Buffer.from(`${line}\r\n`, 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header: PROXY (or LOCAL) over TCP from `source` to `destination`, with `tlvBytes` of padding TLV. */
function v2(source: string | undefined, destination = '127.0.0.1', { local = false, tlvBytes = 0 } = {}): Buffer {
  const isV6 = source?.includes(':') ?? false;
  const toBytes = (address: string) => (isV6 ? ipv6Bytes(address) : Buffer.from(address.split('.').map(Number)));
  const addresses =
    source === undefined ? Buffer.alloc(0) : Buffer.concat([toBytes(source), toBytes(isV6 ? '::1' : destination), Buffer.from([0x15, 0xb3, 0x1f, 0x40])]);
  const tlv = tlvBytes === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x04, tlvBytes >> 8, tlvBytes & 0xff]), Buffer.alloc(tlvBytes)]);
  const fixed = Buffer.alloc(4);
  fixed[0] = local ? 0x20 : 0x21;
  fixed[1] = source === undefined ? 0x00 : isV6 ? 0x21 : 0x11;
  fixed.writeUInt16BE(addresses.length + tlv.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, addresses, tlv]);
}

function ipv6Bytes(written: string): Buffer {
  // An embedded IPv4 address as its two groups.
  const address = written.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`);
  const [head, tail = ''] = address.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16)));
  const before = groups(head!);
  const after = groups(tail);
  const all = [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
  const bytes = Buffer.alloc(16);
  all.forEach((group, index) => bytes.writeUInt16BE(group, index * 2));
  return bytes;
}

const plainRequest = (key: string) => Buffer.from(`GET ${url} HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\nProxy-Authorization: Bearer ${key}\r\nConnection: close\r\n\r\n`);
const connectRequest = (key: string) => Buffer.from(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\nProxy-Authorization: Bearer ${key}\r\n\r\n`);

/**
 * Writes `parts` on a raw connection, one write each, and resolves with everything the node
 * sent until it closed (or, for a CONNECT, until the end of its answer's head).
 */
function exchange(port: number, parts: Buffer[], { untilHeadEnd = false } = {}): Promise<string> {
  const exchanged = new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (untilHeadEnd && received.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.on('connect', async () => {
      for (const part of parts) {
        socket.write(part);
        // Each part in its own packet, so the node reads a header in pieces.
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
  });
  return within(exchanged, { what: 'the node to answer or close' });
}

const statusOf = (answer: string) => Number(answer.split(' ')[1]);
const codeOf = (answer: string) => /X-Portcullis-Error: ([a-z_]+)/i.exec(answer)?.[1];

t.test('the parser reads v1 and v2 headers, and says when it needs more or cannot read them', async (t) => {
  t.same(parseProxyHeader(v1('PROXY TCP4 203.0.113.7 127.0.0.1 5555 8000'), 'any'), { length: 44, source: '203.0.113.7' });
  t.same(parseProxyHeader(v1('PROXY TCP6 2001:db8::7 ::1 5555 8000'), 'v1'), { length: 38, source: '2001:db8::7' });
  t.same(parseProxyHeader(v1('PROXY UNKNOWN whatever'), 'v1'), { length: 24, source: undefined });
  t.same(parseProxyHeader(v2('203.0.113.7'), 'v2'), { length: 28, source: '203.0.113.7' });
  t.same(parseProxyHeader(v2('2001:db8::7'), 'any'), { length: 52, source: '2001:db8:0:0:0:0:0:7' });
  t.same(parseProxyHeader(v2('::ffff:203.0.113.7'), 'any'), { length: 52, source: '::ffff:203.0.113.7' });
  t.same(parseProxyHeader(v2(undefined, undefined, { local: true }), 'any'), { length: 16, source: undefined }, 'LOCAL: the balancer itself');
  t.same(parseProxyHeader(v2('203.0.113.7', '127.0.0.1', { tlvBytes: 300 }), 'any'), { length: 331, source: '203.0.113.7' }, 'TLVs are skipped');
  const whole = v2('203.0.113.7');
  for (let cut = 0; cut < whole.length; cut++) t.equal(parseProxyHeader(whole.subarray(0, cut), 'any'), 'more', `v2 cut at ${cut}`);
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 203.0'), 'any'), 'more');
  t.equal(parseProxyHeader(Buffer.from('PRO'), 'v1'), 'more');
  for (const [name, bytes, mode] of [
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\n'), 'any'],
    ['a v2 header where only v1 is accepted', v2('203.0.113.7'), 'v1'],
    ['a v1 header where only v2 is accepted', v1('PROXY TCP4 203.0.113.7 127.0.0.1 5555 8000'), 'v2'],
    ['a v1 address of the wrong family', v1('PROXY TCP4 2001:db8::7 127.0.0.1 5555 8000'), 'any'],
    ['a v1 port out of range', v1('PROXY TCP4 203.0.113.7 127.0.0.1 70000 8000'), 'any'],
    ['a v1 header with a missing field', v1('PROXY TCP4 203.0.113.7 127.0.0.1 5555'), 'any'],
    ['a v1 header with no end in 107 bytes', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), 'any'],
    ['a v2 header of version 3', Buffer.concat([V2_SIGNATURE, Buffer.from([0x31, 0x11, 0, 12]), Buffer.alloc(12)]), 'any'],
    ['a v2 header too long', Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]), 'any'],
    ['a v2 IPv4 header too short for its addresses', Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0, 4]), Buffer.alloc(4)]), 'any'],
  ] as const) {
    t.equal(parseProxyHeader(bytes, mode), 'invalid', name);
  }
});

t.test("v1 over a raw socket: the header's address is the client's, for plain HTTP and CONNECT, IPv4 and IPv6", async (t) => {
  const header4 = v1('PROXY TCP4 203.0.113.7 127.0.0.1 5555 8000');
  const header6 = v1('PROXY TCP6 2001:db8::7 ::1 5555 8000');
  for (const header of [header4, header6]) {
    t.equal(statusOf(await exchange(anyVersion.port, [header, plainRequest(fromDocumentationRange.key)])), 200, 'served from the documented range');
    const refused = await exchange(anyVersion.port, [header, plainRequest(fromLoopback.key)]);
    t.equal(statusOf(refused), 403, 'the socket is loopback, the client is not');
    t.equal(codeOf(refused), 'client_forbidden');
    t.equal(statusOf(await exchange(anyVersion.port, [header, connectRequest(fromDocumentationRange.key)], { untilHeadEnd: true })), 200, 'CONNECT');
    t.equal(statusOf(await exchange(v1Only.port, [Buffer.concat([header, plainRequest(fromDocumentationRange.key)])], {})), 200, 'header and request in one packet');
  }
  const split = [Buffer.from('PROXY TC'), Buffer.from('P4 203.0.11'), Buffer.from('3.7 127.0.0.1 5555 8000\r'), Buffer.from('\n'), plainRequest(fromDocumentationRange.key)];
  t.equal(statusOf(await exchange(anyVersion.port, split)), 200, 'a header in pieces');
});

t.test('v2 over a raw socket: IPv4, IPv6, IPv4-mapped and LOCAL', async (t) => {
  for (const source of ['203.0.113.9', '2001:db8::9', '::ffff:203.0.113.9']) {
    t.equal(statusOf(await exchange(anyVersion.port, [v2(source), plainRequest(fromDocumentationRange.key)])), 200, `${source} in the documented range`);
    t.equal(codeOf(await exchange(anyVersion.port, [v2(source), plainRequest(fromLoopback.key)])), 'client_forbidden', `${source} is not loopback`);
  }
  const local = v2(undefined, undefined, { local: true });
  t.equal(statusOf(await exchange(anyVersion.port, [local, plainRequest(fromLoopback.key)])), 200, "LOCAL: the connection's own address, loopback");
  const header = v2('203.0.113.9', '127.0.0.1', { tlvBytes: 200 });
  t.equal(statusOf(await exchange(anyVersion.port, [header.subarray(0, 10), header.subarray(10), plainRequest(fromDocumentationRange.key)])), 200, 'in pieces, with TLVs');
});

t.test('when enabled, a connection without a valid header is closed unanswered', async (t) => {
  t.equal(await exchange(anyVersion.port, [plainRequest(fromLoopback.key)]), '', 'a request with no header');
  t.equal(await exchange(anyVersion.port, [v1('PROXY TCP4 203.0.113.7 nonsense 5555 8000'), plainRequest(fromLoopback.key)]), '', 'a malformed header');
  t.equal(await exchange(v1Only.port, [v2('203.0.113.7'), plainRequest(fromLoopback.key)]), '', 'v2 where only v1 is accepted');
  t.equal(await exchange(anyVersion.port, [Buffer.from('PROXY TCP4 203.0.113.7')]), '', 'a header never finished: closed after REQUEST_HEADERS_TIMEOUT_MS');
  t.equal(await exchange(anyVersion.port, []), '', 'silence: closed after REQUEST_HEADERS_TIMEOUT_MS');
  await waitFor(() => anyVersion.openConnections() === 0, { what: 'the node to keep none of them' });
});

t.test('when disabled, a PROXY header is a bad request, and no header a client sends moves its address', async (t) => {
  for (const header of [v1('PROXY TCP4 127.0.0.1 127.0.0.1 5555 8000'), v2('127.0.0.1')]) {
    const answer = await exchange(world.node.port, [header, plainRequest(fromLoopback.key)]);
    t.equal(statusOf(answer), 400);
    t.equal(codeOf(answer), 'bad_request');
  }
  const forged = await proxyRequest(world.node.port, url, {
    'proxy-authorization': `Bearer ${fromDocumentationRange.key}`,
    'x-forwarded-for': '203.0.113.7',
    forwarded: 'for=203.0.113.7',
    'x-real-ip': '203.0.113.7',
  });
  t.equal(forged.status, 403, 'forwarding headers are not believed');
  t.equal(forged.headers['x-portcullis-error'], 'client_forbidden');
});
