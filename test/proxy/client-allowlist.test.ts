import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { waitFor } from '../helpers/deadline.js';
import { bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const run = promisify(execFile);
const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
// A dual-stack node: IPv6 clients as themselves, IPv4 clients as ::ffff:a.b.c.d.
const dualStack = await world.startNode({ host: '::' });
const url = `${world.origin.url}/allowlist`;
const keysPath = `/v1/teams/${world.team.id}/keys`;

/**
 * `curl -x` through `proxyHost` (`-p`: through a CONNECT tunnel), answering the proxy's or
 * the origin's status and the refusal code if any (read from curl's trace, which shows the
 * answer to a CONNECT too).
 */
async function curlThrough(proxyHost: string, port: number, key: string, connect: boolean): Promise<{ status: number; code: string }> {
  const { stdout, stderr } = await run('curl', [
    '-sS', '-v', '-o', '/dev/null', '-w', '%{http_code} %{http_connect}',
    ...(connect ? ['-p'] : []),
    '-x', `http://${proxyHost}:${port}`, '-U', `customer:${key}`, url,
  ]).catch((error: { stdout: string; stderr: string }) => error);
  const [status, connectStatus] = stdout.trim().split(' ').map(Number);
  const code = /^< X-Portcullis-Error: ([a-z_]+)/im.exec(stderr)?.[1] ?? '';
  return { status: connect && connectStatus !== 200 ? connectStatus! : status!, code };
}

t.test('the API normalises allowedClientCidrs, shows them, and refuses bad ones without writing anything', async (t) => {
  const created = await world.cp.request('POST', keysPath, {
    body: { name: 'allowlisted', allowedClientCidrs: ['10.1.2.3/8', '2001:DB8::1/32', '::ffff:192.0.2.1', '10.0.0.0/8', ' 198.51.100.7 '] },
  });
  t.equal(created.status, 201);
  t.same(created.body.allowedClientCidrs, ['10.0.0.0/8', '2001:db8::/32', '192.0.2.1/32', '198.51.100.7/32'], 'host bits cleared, lower case, mapped IPv4 as IPv4, duplicates dropped');
  const plain = await world.createKey();
  t.same((await world.cp.request('GET', `${keysPath}/${plain.id}`)).body.allowedClientCidrs, [], 'none by default: any address');

  for (const bad of ['10.0.0.0/33', 'fe80::1%eth0', 'example.com', '10.0.0.0/08', '::/129', '']) {
    const refused = await world.cp.request('POST', keysPath, { body: { name: `bad-${Math.random()}`, allowedClientCidrs: [bad] } });
    t.equal(refused.status, bad === '' ? 400 : 422, `"${bad}" refused`);
    t.equal(refused.body.error.code, bad === '' ? 'invalid_field' : 'client_cidr_invalid');
  }
  const tooMany = await world.cp.request('POST', keysPath, { body: { name: 'many', allowedClientCidrs: Array.from({ length: 101 }, (_, i) => `10.0.${i}.0/24`) } });
  t.equal(tooMany.status, 400, 'at most 100 ranges');
  const bulk = await world.cp.request('POST', `${keysPath}/bulk`, { body: { keys: [{ name: 'bulk-ok', allowedClientCidrs: ['203.0.113.0/24'] }, { name: 'bulk-bad', allowedClientCidrs: ['nope'] }] } });
  t.equal(bulk.status, 422);
  t.match(bulk.body.error.message, /^keys\.1: /);
  const list = await world.cp.request('GET', `${keysPath}?q=bulk`);
  t.equal(list.body.data.length, 0, 'a bad bulk item writes nothing');

  const patched = await world.cp.request('PATCH', `${keysPath}/${created.body.id}`, { body: { allowedClientCidrs: ['2001:db8:0:0:1::/80'] } });
  t.equal(patched.status, 200);
  t.same(patched.body.allowedClientCidrs, ['2001:db8:0:0:1::/80']);
  const badPatch = await world.cp.request('PATCH', `${keysPath}/${created.body.id}`, { body: { allowedClientCidrs: ['1.2.3'] } });
  t.equal(badPatch.body.error.code, 'client_cidr_invalid');
  t.same((await world.cp.request('GET', `${keysPath}/${created.body.id}`)).body.allowedClientCidrs, ['2001:db8:0:0:1::/80'], 'unchanged by the refused update');
});

t.test('IPv4: a client inside the ranges is served, one outside gets 403 client_forbidden, plain HTTP and CONNECT', async (t) => {
  const inside = await world.createKey({ allowedClientCidrs: ['127.0.0.0/8'] });
  const outside = await world.createKey({ allowedClientCidrs: ['10.0.0.0/8', '2001:db8::/32'] });
  t.equal((await proxyRequest(world.node.port, url, bearer(inside.key))).status, 200);
  const refused = await proxyRequest(world.node.port, url, bearer(outside.key));
  t.equal(refused.status, 403);
  t.equal(refused.headers['x-portcullis-error'], 'client_forbidden');
  t.match(refused.body, /^client_forbidden: .*allowedClientCidrs/);

  const tunnel = await proxyConnect(world.node.port, `127.0.0.1:${new URL(world.origin.url).port}`, bearer(inside.key));
  t.equal(tunnel.status, 200);
  tunnel.socket.destroy();
  const refusedTunnel = await proxyConnect(world.node.port, `127.0.0.1:${new URL(world.origin.url).port}`, bearer(outside.key));
  t.equal(refusedTunnel.status, 403);
  t.match(refusedTunnel.head, /X-Portcullis-Error: client_forbidden/);
  refusedTunnel.socket.destroy();
  t.same(await curlThrough('127.0.0.1', world.node.port, outside.key, true), { status: 403, code: 'client_forbidden' }, 'curl -p sees the refusal');
});

t.test('IPv6 clients match IPv6 ranges; IPv4 clients of a dual-stack node (::ffff:127.0.0.1) match IPv4 ranges', async (t) => {
  const loopback6 = await world.createKey({ allowedClientCidrs: ['::1/128'] });
  const loopback4 = await world.createKey({ allowedClientCidrs: ['127.0.0.1/32'] });
  const elsewhere6 = await world.createKey({ allowedClientCidrs: ['2001:db8::/32'] });
  for (const connect of [false, true]) {
    const how = connect ? 'CONNECT' : 'plain HTTP';
    t.same(await curlThrough('[::1]', dualStack.port, loopback6.key, connect), { status: 200, code: '' }, `${how}: ::1 in ::1/128`);
    t.same(await curlThrough('[::1]', dualStack.port, elsewhere6.key, connect), { status: 403, code: 'client_forbidden' }, `${how}: ::1 not in 2001:db8::/32`);
    t.same(await curlThrough('[::1]', dualStack.port, loopback4.key, connect), { status: 403, code: 'client_forbidden' }, `${how}: ::1 not in 127.0.0.1/32`);
    t.same(await curlThrough('127.0.0.1', dualStack.port, loopback4.key, connect), { status: 200, code: '' }, `${how}: ::ffff:127.0.0.1 in 127.0.0.1/32`);
    t.same(await curlThrough('127.0.0.1', dualStack.port, loopback6.key, connect), { status: 403, code: 'client_forbidden' }, `${how}: ::ffff:127.0.0.1 not in ::1/128`);
  }
});

t.test("changing a key's ranges reaches a node that has the key cached", async (t) => {
  const changing = await world.createKey({ allowedClientCidrs: ['127.0.0.0/8'] });
  t.equal((await proxyRequest(world.node.port, url, bearer(changing.key))).status, 200, 'cached while allowed');
  await world.cp.request('PATCH', `${keysPath}/${changing.id}`, { body: { allowedClientCidrs: ['192.0.2.0/24'] } });
  await waitFor(async () => (await proxyRequest(world.node.port, url, bearer(changing.key))).status === 403, { what: 'the narrowed ranges to be enforced' });
  await world.cp.request('PATCH', `${keysPath}/${changing.id}`, { body: { allowedClientCidrs: [] } });
  await waitFor(async () => (await proxyRequest(world.node.port, url, bearer(changing.key))).status === 200, { what: 'an emptied list to allow any address' });
});
