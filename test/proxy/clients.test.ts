import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startHttpsOrigin } from '../helpers/origin.js';
import { basic, bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const run = promisify(execFile);
const world = await startWorld({ exitCountries: ['DE', 'US'] });
t.teardown(() => world.close());
const { key } = await world.createKey();
const proxy = `127.0.0.1:${world.node.port}`;
const httpsOrigin = await startHttpsOrigin();
t.teardown(() => httpsOrigin.close());

t.test('curl -x with -U user:KEY reaches the origin', async (t) => {
  const { stdout } = await run('curl', ['-sS', '-x', `http://${proxy}`, '-U', `customer:${key}`, `${world.origin.url}/hello?x=1`]);
  const body = JSON.parse(stdout);
  t.equal(body.url, '/hello?x=1');
  t.match(body.exit, /^exit-/, 'carried by a stand-in exit');
});

t.test('curl with username targeting lands on an exit of that country', async (t) => {
  for (const country of ['de', 'us']) {
    const { stdout } = await run('curl', ['-sS', '-x', `http://customer-country-${country}:${key}@${proxy}`, `${world.origin.url}/geo`]);
    t.equal(JSON.parse(stdout).exit, `exit-${country}-${country === 'de' ? 0 : 1}`);
  }
});

t.test('curl CONNECT to an HTTPS origin through the node', async (t) => {
  const { stdout } = await run('curl', ['-sS', '-k', '-x', `http://${proxy}`, '-U', `customer-country-us:${key}`, `${httpsOrigin.url}/secure`]);
  t.equal(JSON.parse(stdout).url, '/secure');
});

t.test("Node's http client with Bearer and Basic credentials", async (t) => {
  const viaBearer = await proxyRequest(world.node.port, `${world.origin.url}/bearer`, bearer(key));
  t.equal(viaBearer.status, 200);
  const viaBasic = await proxyRequest(world.node.port, `${world.origin.url}/basic`, basic('me', key));
  t.equal(viaBasic.status, 200);
  const viaAuthorization = await proxyRequest(world.node.port, `${world.origin.url}/auth`, { authorization: `Bearer ${key}` });
  t.equal(viaAuthorization.status, 200, 'Authorization: Bearer on plain HTTP');
  const seen = world.origin.seen.find((request) => request.url === '/auth')!;
  t.notOk(seen.headers.authorization, 'our Authorization header is stripped before forwarding');
});

t.test("Python's urllib with ProxyHandler and basic auth", async (t) => {
  const script = [
    'import urllib.request, sys',
    `handler = urllib.request.ProxyHandler({"http": "http://customer:${key}@${proxy}"})`,
    'opener = urllib.request.build_opener(handler)',
    `print(opener.open("${world.origin.url}/python").read().decode())`,
  ].join('\n');
  const { stdout } = await run('python3', ['-c', script]);
  t.equal(JSON.parse(stdout).url, '/python');
});

t.test('forwarding strips credentials and Proxy-* headers and adds nothing about the client', async (t) => {
  const response = await proxyRequest(world.node.port, `${world.origin.url}/headers`, {
    ...bearer(key),
    'proxy-country': 'DE',
    'proxy-session': 'abc',
    'x-custom': 'kept',
    connection: 'keep-alive, x-hop',
    'x-hop': 'dropped',
  });
  t.equal(response.status, 200);
  const seen = world.origin.seen.find((request) => request.url === '/headers')!;
  for (const header of ['proxy-authorization', 'proxy-country', 'proxy-session', 'via', 'x-forwarded-for', 'forwarded', 'x-hop']) {
    t.notOk(header in seen.headers, `${header} not forwarded`);
  }
  t.equal(seen.headers['x-custom'], 'kept');
  t.notOk('x-portcullis-exit' in response.headers, "the exit's marker does not reach the client");
});

t.test('a POST body is forwarded whole', async (t) => {
  const body = 'x'.repeat(200_000);
  const response = await proxyRequest(world.node.port, `${world.origin.url}/upload`, bearer(key), { method: 'POST', body });
  t.equal(response.status, 200);
  t.equal(JSON.parse(response.body).body.length, body.length);
});
