import t, { type Test } from 'tap';
import { generateApiKey } from '../../lib/secret-format.js';
import { waitFor } from '../helpers/deadline.js';
import { basic, bearer, proxyConnect, proxyRequest, type ProxyResponse } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
const { key } = await world.createKey();
const url = `${world.origin.url}/`;

function assertRefusal(t: Test, response: ProxyResponse, status: number, code: string): void {
  t.equal(response.status, status, `status ${status}`);
  t.equal(response.headers['x-portcullis-error'], code, 'X-Portcullis-Error');
  t.match(response.headers['proxy-status'], new RegExp(`^portcullis; error=[a-z_]+; details="${code}"$`), 'RFC 9209 Proxy-Status');
  t.match(response.body, new RegExp(`^${code}: .+\\n$`), 'one line saying how to fix it');
  if (status === 407) t.equal(response.headers['proxy-authenticate'], 'Basic realm="portcullis"');
  else t.notOk(response.headers['proxy-authenticate'], 'only 407 asks for credentials');
}

const asBasic = (value: string) => ({ 'proxy-authorization': `Basic ${value}` });

const cases: [string, Record<string, string>, number, string][] = [
  ['no credentials', {}, 407, 'auth_required'],
  ['unknown well-formed key', bearer(generateApiKey()), 407, 'key_invalid'],
  ['key with a bad checksum', bearer(`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`), 407, 'key_invalid'],
  ['not a key at all', bearer('hunter2'), 407, 'key_invalid'],
  ['empty Proxy-Authorization', { 'proxy-authorization': '' }, 407, 'key_invalid'],
  ['bad base64', asBasic('%%%not-base64%%%'), 407, 'key_invalid'],
  ['base64 without a colon', asBasic(Buffer.from('nocolon').toString('base64')), 407, 'key_invalid'],
  ['huge Proxy-Authorization', bearer(`sk_live_${'a'.repeat(5000)}`), 407, 'key_invalid'],
  ['non-ASCII credentials', asBasic(Buffer.from(`usér:${key}é`, 'latin1').toString('base64')), 407, 'key_invalid'],
  ['unknown scheme', { 'proxy-authorization': `Digest ${key}` }, 407, 'key_invalid'],
  ['unknown country', basic('c-country-xx', key), 400, 'country_unknown'],
  ['a three-letter country code', { ...bearer(key), 'proxy-country': 'DEU' }, 400, 'country_unknown'],
  ['malformed session id', { ...bearer(key), 'proxy-session': 'bad id!' }, 400, 'bad_request'],
  ['session time out of range', basic('c-session-abc-sesstime-0', key), 400, 'bad_request'],
  ['no exit in the country', { ...bearer(key), 'proxy-country': 'FR' }, 503, 'no_exit'],
  ['pool that does not exist', basic('c-pool-nope', key), 403, 'pool_forbidden'],
];

for (const [name, headers, status, code] of cases) {
  t.test(`${name} → ${status} ${code}`, async (t) => {
    assertRefusal(t, await proxyRequest(world.node.port, url, headers), status, code);
  });
}

t.test('a header section over 16 KiB → 431 bad_request, and the node keeps serving', async (t) => {
  const response = await proxyRequest(world.node.port, url, { ...bearer(key), 'x-filler': 'y'.repeat(20_000) });
  t.equal(response.status, 431);
  t.equal(response.headers['x-portcullis-error'], 'bad_request');
  t.equal((await proxyRequest(world.node.port, url, bearer(key))).status, 200);
});

t.test('a request that is not absolute-form → 400 bad_request', async (t) => {
  assertRefusal(t, await proxyRequest(world.node.port, '/not-absolute', bearer(key)), 400, 'bad_request');
  assertRefusal(t, await proxyRequest(world.node.port, 'ftp://127.0.0.1/file', bearer(key)), 400, 'bad_request');
});

t.test('grants: country and pool not granted → 403', async (t) => {
  await world.cp.request('POST', '/v1/pools', { body: { name: 'datacenter', exits: [{ country: 'DE', url: world.exits[0]!.poolUrl }] } });
  const limited = await world.createKey({ countries: ['US'], pools: ['residential'] });
  assertRefusal(t, await proxyRequest(world.node.port, url, { ...bearer(limited.key), 'proxy-country': 'DE' }), 403, 'country_forbidden');
  assertRefusal(t, await proxyRequest(world.node.port, url, basic('c-pool-datacenter', limited.key)), 403, 'pool_forbidden');
});

t.test('revoked and expired keys → 407 key_revoked / key_expired', async (t) => {
  const doomed = await world.createKey();
  t.equal((await proxyRequest(world.node.port, url, bearer(doomed.key))).status, 200);
  await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${doomed.id}/revoke`);
  const refused = await waitFor(
    async () => {
      const response = await proxyRequest(world.node.port, url, bearer(doomed.key));
      return response.status === 407 ? response : undefined;
    },
    { what: 'the revoked key to be refused' },
  );
  assertRefusal(t, refused, 407, 'key_revoked');

  const expiring = await world.createKey({ expiresAt: new Date(Date.now() + 60_000).toISOString() });
  await world.cp.adminDb.query(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [expiring.id]);
  assertRefusal(t, await proxyRequest(world.node.port, url, bearer(expiring.key)), 407, 'key_expired');
});

t.test('CONNECT refusals carry the same codes and close the connection', async (t) => {
  const none = await proxyConnect(world.node.port, `127.0.0.1:${world.origin.port}`);
  t.equal(none.status, 407);
  t.match(none.head, /X-Portcullis-Error: auth_required/);
  t.match(none.head, /Proxy-Authenticate: Basic realm="portcullis"/);
  none.socket.destroy();
  const unknown = await proxyConnect(world.node.port, `127.0.0.1:${world.origin.port}`, { 'Proxy-Country': 'ZZ', ...bearer(key) });
  t.equal(unknown.status, 400);
  t.match(unknown.head, /Proxy-Status: portcullis; error=http_request_error; details="country_unknown"/);
  unknown.socket.destroy();
  const malformed = await proxyConnect(world.node.port, 'no-port-here', bearer(key));
  t.equal(malformed.status, 400);
  malformed.socket.destroy();
});

t.test('the exit failing → 502 exit_failed', async (t) => {
  const failing = await world.createKey();
  const response = await proxyRequest(world.node.port, 'http://127.0.0.1:1/', bearer(failing.key));
  assertRefusal(t, response, 502, 'exit_failed');
});
