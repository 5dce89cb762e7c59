import t from 'tap';
import { createExitServer } from '../../exit/exit-server.js';
import net from 'node:net';
import { createLogger } from '../../lib/logger.js';
import { generateToken } from '../../lib/secret-format.js';
import { deadline, waitFor, within } from '../helpers/deadline.js';
import { startOrigin } from '../helpers/origin.js';
import { basic, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';

const token = generateToken();
const logger = createLogger({ level: 'silent', name: 'exit' });
const exit = await createExitServer({ id: 'exit-test', country: 'NL', token, allowPrivateDestinations: true, logger });
t.teardown(() => exit.close());
const origin = await startOrigin();
t.teardown(() => origin.close());
const credential = basic('exit', token);

t.test('without its token the exit is no open proxy: 407 for requests and tunnels, nothing reaches the target', async (t) => {
  const seenBefore = origin.seen.length;
  const wrong = [{}, basic('exit', generateToken()), basic(token, ''), { 'proxy-authorization': `Bearer ${token}` }, basic('exit', `${token}x`)];
  for (const headers of wrong) {
    const response = await proxyRequest(exit.port, `${origin.url}/open-proxy`, headers);
    t.equal(response.status, 407);
    t.equal(response.headers['x-portcullis-exit-error'], 'auth_required');
    t.equal(response.headers['proxy-authenticate'], 'Basic realm="portcullis-exit"');
    const tunnel = await proxyConnect(exit.port, `127.0.0.1:${origin.port}`, headers);
    t.equal(tunnel.status, 407);
    tunnel.socket.destroy();
  }
  t.equal(origin.seen.length, seenBefore, 'the origin saw nothing');
  t.equal(exit.stats().tunnels, 0);
  t.match(exit.poolUrl, new RegExp(`^http://exit:${token}@127\\.0\\.0\\.1:${exit.port}$`), 'the pool URL carries the token');
});

t.test('Expect: 100-continue is answered only once the token is checked', async (t) => {
  const exchange = (headers: string) =>
    new Promise<string>((resolve) => {
      const socket = net.connect(exit.port, '127.0.0.1');
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        received += chunk;
        if (received.startsWith('HTTP/1.1 100')) {
          socket.write('body');
          received = `${received}|`;
        }
      });
      socket.on('close', () => resolve(received));
      socket.write(`POST ${origin.url}/continue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n${headers}\r\n`);
    });
  t.match(await exchange(''), /^HTTP\/1\.1 407 /, 'no credential: 407 straight away, no 100 Continue');
  const admitted = await exchange(`Proxy-Authorization: ${credential['proxy-authorization']}\r\n`);
  t.match(admitted, /^HTTP\/1\.1 100 Continue\r\n\r\n\|HTTP\/1\.1 200 OK/, 'with it: 100 Continue, then the answer');
});

t.test('the stand-in exit forwards and marks which exit carried the request', async (t) => {
  const before = exit.stats().requests;
  const response = await proxyRequest(exit.port, `${origin.url}/marked`, credential);
  t.equal(response.status, 200);
  t.equal(response.headers['x-portcullis-exit'], 'exit-test');
  t.equal(response.headers['x-portcullis-exit-country'], 'NL');
  t.equal(JSON.parse(response.body).exit, 'exit-test', 'the origin sees the marker too');
  const tunnel = await proxyConnect(exit.port, `127.0.0.1:${origin.port}`, credential);
  t.equal(tunnel.status, 200);
  t.match(tunnel.head, /X-Portcullis-Exit: exit-test/);
  tunnel.socket.destroy();
  t.equal(exit.stats().requests, before + 1);
});

t.test('a target it cannot reach is a marked 502', async (t) => {
  const response = await proxyRequest(exit.port, 'http://127.0.0.1:1/', credential);
  t.equal(response.status, 502);
  t.equal(response.headers['x-portcullis-exit-error'], 'ECONNREFUSED');
  const tunnel = await proxyConnect(exit.port, '127.0.0.1:1', credential);
  t.equal(tunnel.status, 502);
  tunnel.socket.destroy();
});

t.test('a name that does not resolve is a 502 marked dns_error, for requests and tunnels', async (t) => {
  const response = await proxyRequest(exit.port, 'http://no-such-host.invalid/', credential);
  t.equal(response.status, 502);
  t.equal(response.headers['x-portcullis-exit-error'], 'dns_error');
  const tunnel = await proxyConnect(exit.port, 'no-such-host.invalid:443', credential);
  t.equal(tunnel.status, 502);
  t.match(tunnel.head, /X-Portcullis-Exit-Error: dns_error/);
  tunnel.socket.destroy();
});

t.test('by default it refuses private destinations, named or not, with a marked 403', async (t) => {
  const guarded = await createExitServer({ id: 'exit-guarded', country: 'NL', token, allowPrivateDestinations: false, logger });
  t.teardown(() => guarded.close());
  const seenBefore = origin.seen.length;
  for (const url of [`${origin.url}/`, `http://127.1:${origin.port}/`, 'http://169.254.169.254/latest/meta-data/']) {
    const response = await proxyRequest(guarded.port, url, credential);
    t.equal(response.status, 403, url);
    t.equal(response.headers['x-portcullis-exit-error'], 'destination_forbidden');
  }
  for (const authority of [`127.0.0.1:${origin.port}`, `127.1:${origin.port}`]) {
    const tunnel = await proxyConnect(guarded.port, authority, credential);
    t.equal(tunnel.status, 403, authority);
    t.match(tunnel.head, /X-Portcullis-Exit-Error: destination_forbidden/);
    tunnel.socket.destroy();
  }
  t.equal(origin.seen.length, seenBefore, 'the origin saw nothing');
});

t.test('on close it stops accepting and lets an open tunnel finish', async (t) => {
  const draining = await createExitServer({ id: 'exit-drain', country: 'NL', token, allowPrivateDestinations: true, logger });
  const tunnel = await proxyConnect(draining.port, `127.0.0.1:${origin.port}`, credential);
  t.equal(tunnel.status, 200);
  const closing = draining.close(deadline(10_000));
  await waitFor(() => fetch(`${draining.url}/healthz`).then(() => false, () => true), { what: 'the exit to stop accepting' });
  tunnel.socket.setEncoding('latin1');
  let reply = '';
  tunnel.socket.on('data', (chunk: string) => (reply += chunk));
  const ended = new Promise((resolve) => tunnel.socket.once('close', resolve));
  tunnel.socket.write('GET /after-close HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  await within(ended, { what: 'the tunnel to finish its exchange' });
  t.match(reply, /^HTTP\/1\.1 200 OK/, 'the open tunnel still carried a request');
  await within(closing, { what: 'close to return once the tunnel is done' });
});

t.test('it serves /healthz, /readyz and /metrics for itself', async (t) => {
  t.equal((await fetch(`${exit.url}/healthz`)).status, 200);
  t.equal((await fetch(`${exit.url}/readyz`)).status, 200);
  t.match(await (await fetch(`${exit.url}/metrics`)).text(), /portcullis_exit_requests_total/);
});
