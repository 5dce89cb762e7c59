import t from 'tap';
import { sha256 } from '../../lib/hash.js';
import { isWellFormedApiKey } from '../../lib/secret-format.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
const { cp, team } = world;
const bulkPath = `/v1/teams/${team.id}/keys/bulk`;
const bulk = (body: unknown, token = team.token) => cp.request('POST', bulkPath, { token, body });

async function counts(): Promise<string> {
  const { rows } = await cp.adminDb.query(`SELECT (SELECT count(*) FROM api_keys) AS keys, (SELECT count(*) FROM activity) AS activity`);
  return JSON.stringify(rows[0]);
}

t.test('1,000 keys in one call: secrets returned once, in order, one activity entry each', async (t) => {
  // Long names make the body well over the 64 KiB body limit of single calls.
  const names = Array.from({ length: 1_000 }, (_, i) => `bulk-${String(i).padStart(4, '0')}-${'x'.repeat(100)}`);
  const response = await bulk({ keys: names.map((name, i) => (i % 2 === 0 ? { name } : { name, pools: ['residential'], countries: ['de'], monthlyQuotaBytes: 1_000_000 })) });
  t.equal(response.status, 201, JSON.stringify(response.body).slice(0, 300));
  const created: any[] = response.body.data;
  t.same(
    created.map((key) => key.name),
    names,
    'in the order given',
  );
  t.ok(created.every((key) => isWellFormedApiKey(key.key)), 'every secret is a well-formed key');
  t.equal(new Set(created.map((key) => key.key)).size, 1_000, 'all distinct');
  t.same(created[1].countries, ['DE'], 'grants parsed as for a single key');
  t.equal(created[1].monthlyRemainingBytes, 1_000_000);
  const stored = await cp.adminDb.query<{ n: number }>('SELECT count(*)::int AS n FROM api_keys WHERE team_id = $1 AND key_hash = ANY($2)', [team.id, created.map((key) => sha256(key.key))]);
  t.equal(stored.rows[0]!.n, 1_000, 'stored by hash');
  const logged = await cp.adminDb.query<{ target_id: string }>(`SELECT target_id FROM activity WHERE action = 'key.created' AND team_id = $1`, [team.id]);
  t.same(new Set(logged.rows.map((row) => row.target_id)), new Set(created.map((key) => key.id)), 'one key.created entry per key');
  const read = await cp.request('GET', `/v1/teams/${team.id}/keys/${created[0].id}`, { token: team.token });
  t.notOk('key' in read.body, 'the secret is not shown again');
  const proxied = await proxyRequest(world.node.port, `${world.origin.url}/bulk`, bearer(created[999].key));
  t.equal(proxied.status, 200, 'a bulk-created key works through a proxy node');
});

t.test('one bad item fails the whole call, names its index, and writes nothing', async (t) => {
  const good = Array.from({ length: 600 }, (_, i) => ({ name: `atomic-${i}` }));
  const cases: { name: string; keys: unknown[]; status: number; code: string; where: string }[] = [
    { name: 'unknown pool', keys: good.map((key, i) => (i === 537 ? { ...key, pools: ['nope'] } : key)), status: 422, code: 'pool_unknown', where: 'keys.537:' },
    { name: 'unknown country', keys: good.map((key, i) => (i === 12 ? { ...key, countries: ['XX'] } : key)), status: 422, code: 'country_unknown', where: 'keys.12:' },
    { name: 'expiry in the past', keys: good.map((key, i) => (i === 599 ? { ...key, expiresAt: '2001-01-01T00:00:00Z' } : key)), status: 422, code: 'expires_at_in_past', where: 'keys.599:' },
    { name: 'a name twice in the call', keys: [...good, { name: 'ATOMIC-3' }], status: 409, code: 'key_name_taken', where: 'keys.600:' },
    { name: "an existing key's name", keys: [{ name: 'fresh' }, { name: 'bulk-0000-'.padEnd(110, 'x') }], status: 409, code: 'key_name_taken', where: 'keys.1:' },
    { name: 'an unknown field', keys: good.map((key, i) => (i === 40 ? { ...key, colour: 'red' } : key)), status: 400, code: 'unknown_field', where: 'keys.40.colour' },
    { name: 'a control character in a name', keys: good.map((key, i) => (i === 3 ? { name: 'tab\there' } : key)), status: 400, code: 'invalid_field', where: 'keys.3.name' },
    { name: 'no keys', keys: [], status: 400, code: 'invalid_field', where: 'keys' },
    { name: '1,001 keys', keys: Array.from({ length: 1_001 }, (_, i) => ({ name: `k${i}` })), status: 400, code: 'invalid_field', where: 'keys' },
  ];
  for (const testCase of cases) {
    const before = await counts();
    const response = await bulk({ keys: testCase.keys });
    t.equal(response.status, testCase.status, testCase.name);
    t.equal(response.body.error?.code, testCase.code, testCase.name);
    t.match(response.body.error?.message, testCase.where, `${testCase.name}: names ${testCase.where}`);
    t.equal(await counts(), before, `${testCase.name}: nothing written`);
  }
});

t.test('bulk creation needs keys:write', async (t) => {
  const reader = await cp.request('POST', `/v1/teams/${team.id}/tokens`, { token: team.token, body: { name: 'reader', scopes: ['keys:read'] } });
  const before = await counts();
  const response = await bulk({ keys: [{ name: 'not-allowed' }] }, reader.body.token);
  t.equal(response.status, 403);
  t.equal(response.body.error.code, 'scope_missing');
  t.equal(await counts(), before);
});
