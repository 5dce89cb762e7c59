import t from 'tap';
import net from 'node:net';
import { waitFor } from '../helpers/deadline.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

/**
 * Clients and targets that do what HTTP allows but nobody expects. Promise: every request
 * gets its answer in order, credentials are checked before a client is asked for its body,
 * refused clients cannot hold connections open, and no answer from a target kills the node.
 */

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
await world.cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
const { key } = await world.createKey();
const node = world.node;
const origin = world.origin;

/** Sends raw bytes on one connection and collects everything until `isDone` says so or the node closes. */
function exchange(bytes: string, isDone: (received: string) => boolean, onData?: (received: string, socket: net.Socket) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(node.port, '127.0.0.1', () => socket.write(bytes));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      onData?.(received, socket);
      if (isDone(received)) {
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}

const statusLines = (received: string) => [...received.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n/g)].map((match) => Number(match[1]));

t.test('a GET pipelined before a CONNECT gets its answer, then the CONNECT gets its own', async (t) => {
  const getLine = (headers: string) => `GET ${origin.url}/first HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n${headers}\r\n`;
  const connectLine = (headers: string) => `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n${headers}\r\n`;
  const auth = `Proxy-Authorization: Bearer ${key}\r\n`;

  const admitted = await exchange(getLine(auth) + connectLine(auth), (received) => received.includes('Connection Established'));
  t.same(statusLines(admitted), [200, 200], 'the GET answer, then the tunnel');
  t.match(admitted, /"url":"\/first"[\s\S]*HTTP\/1\.1 200 Connection Established/, 'in that order, the GET body whole');

  const refused = await exchange(getLine('') + connectLine(''), (received) => statusLines(received).length === 2);
  t.same(statusLines(refused), [407, 407], 'both refusals come back');
});

t.test('Expect: 100-continue is answered only after the key is checked', async (t) => {
  const post = (headers: string) =>
    `POST ${origin.url}/upload HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n${headers}\r\n`;
  const refused = await exchange(post(''), (received) => received.includes('\r\n\r\n'));
  t.match(refused, /^HTTP\/1\.1 407 /, 'no credentials: 407 first, never 100 Continue');

  let sentBody = false;
  const admitted = await exchange(
    post(`Proxy-Authorization: Bearer ${key}\r\n`),
    (received) => received.includes('"body":"hello"'),
    (received, socket) => {
      if (!sentBody && received.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
        sentBody = true;
        socket.write('hello');
      }
    },
  );
  t.same(statusLines(admitted), [100, 200], 'a valid key: 100 Continue, then the answer');
  t.equal(origin.seen.at(-1)?.body, 'hello', 'the body reached the origin');
});

t.test('refused clients that never close their side are dropped', async (t) => {
  const before = node.openConnections();
  const requests = [
    ...Array.from({ length: 50 }, () => `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`),
    ...Array.from({ length: 50 }, () => 'NOT HTTP AT ALL\r\n\r\n'),
  ];
  const sockets = await Promise.all(
    requests.map(
      (request) =>
        new Promise<net.Socket>((resolve) => {
          // allowHalfOpen: the client keeps its side open after the node's answer and FIN.
          const socket = net.connect({ port: node.port, host: '127.0.0.1', allowHalfOpen: true }, () => {
            socket.write(request);
            socket.once('end', () => resolve(socket));
            socket.resume();
          });
          socket.on('error', () => {});
        }),
    ),
  );
  t.teardown(() => sockets.forEach((socket) => socket.destroy()));
  t.equal(sockets.length, 100, 'every client got an answer and the end of it');
  await waitFor(() => node.openConnections() <= before, { what: 'the node to drop the half-open connections', timeoutMs: 5_000 });
  t.pass('no half-open connection is left on the node');
});

t.test('a target answering what Node will not write again cannot kill the node or its exit', async (t) => {
  // Node parses both, but throws when asked to write such a status or reason.
  const answers: [string, number][] = [
    ['HTTP/1.1 099 Too Early\r\nContent-Length: 0\r\n\r\n', 502],
    ['HTTP/1.1 200 O\x7fK\r\nContent-Length: 2\r\n\r\nok', 200],
  ];
  let next = 0;
  const target = net.createServer((socket) => socket.once('data', () => socket.end(answers[next++ % answers.length]![0])));
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  t.teardown(() => target.close());
  const url = `http://127.0.0.1:${(target.address() as net.AddressInfo).port}/`;
  for (const pool of ['direct', 'residential']) {
    for (const [answer, status] of answers) {
      const response = await proxyRequest(node.port, url, { ...bearer(key), 'proxy-pool': pool });
      t.equal(response.status, status, `${pool}: ${JSON.stringify(answer.split('\r\n')[0])} → ${status}`);
      if (status === 502) t.equal(response.headers['x-portcullis-error'], 'exit_failed', 'a status under 100 is no HTTP answer');
      else t.equal(response.body, 'ok', 'an unwritable reason phrase is replaced, the answer relayed');
    }
  }
  t.equal((await proxyRequest(node.port, `${origin.url}/still-alive`, bearer(key))).status, 200, 'the node and its exit still serve');
});
