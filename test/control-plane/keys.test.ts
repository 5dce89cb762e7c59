import t from 'tap';
import { sha256 } from '../../lib/hash.js';
import { isWellFormedApiKey } from '../../lib/secret-format.js';
import { startTestControlPlane } from '../helpers/control-plane.js';

const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const team = await cp.createTeam();
const asTeam = (method: string, path: string, body?: unknown) => cp.request(method, path, { token: team.token, body });
const keysPath = `/v1/teams/${team.id}/keys`;

await cp.request('POST', '/v1/pools', { body: { name: 'residential', exits: [{ country: 'DE', url: 'direct' }] } });

t.test('create returns the secret once; get and list never do', async (t) => {
  const created = await asTeam('POST', keysPath, { name: 'scraper', pools: ['residential'], countries: ['de', 'US'] });
  t.equal(created.status, 201);
  t.ok(isWellFormedApiKey(created.body.key), 'key is sk_live_ with a valid checksum');
  t.equal(created.body.prefix, created.body.key.slice(0, 14));
  t.same(created.body.countries, ['DE', 'US'], 'countries normalised and sorted');
  t.equal(created.body.status, 'active');
  const fetched = await asTeam('GET', `${keysPath}/${created.body.id}`);
  t.equal(fetched.status, 200);
  t.notOk('key' in fetched.body, 'get does not return the secret');
  const listed = await asTeam('GET', keysPath);
  t.ok(listed.body.data.every((key: object) => !('key' in key)), 'list does not return secrets');
  const stored = await cp.adminDb.query<{ key_hash: Uint8Array }>('SELECT key_hash FROM api_keys WHERE id = $1', [created.body.id]);
  t.same(Buffer.from(stored.rows[0]!.key_hash), sha256(created.body.key), 'stored as its SHA-256 hash');
  const plaintext = await cp.adminDb.query(`SELECT 1 FROM api_keys WHERE prefix = $1 OR name = $1`, [created.body.key]);
  t.equal(plaintext.rowCount, 0);
});

t.test('patch changes name and grants and logs what changed', async (t) => {
  const created = await asTeam('POST', keysPath, { name: 'to-patch' });
  const patched = await asTeam('PATCH', `${keysPath}/${created.body.id}`, { name: 'patched', countries: ['FR'], rateLimit: { requestsPerSecond: 5 } });
  t.equal(patched.status, 200);
  t.equal(patched.body.name, 'patched');
  t.same(patched.body.countries, ['FR']);
  t.same(patched.body.rateLimit, { requestsPerSecond: 5, burst: 5 });
  const activity = await asTeam('GET', `/v1/teams/${team.id}/activity?limit=5`);
  const entry = activity.body.data.find((item: any) => item.action === 'key.updated' && item.target.id === created.body.id);
  t.ok(entry, 'key.updated entry');
  t.same(entry.details.changes.name, { from: 'to-patch', to: 'patched' });
  t.equal(entry.actor.type, 'team_token');
  t.ok(entry.requestId);
  t.equal(entry.ip, '127.0.0.1');
  const cleared = await asTeam('PATCH', `${keysPath}/${created.body.id}`, { rateLimit: null, expiresAt: null });
  t.equal(cleared.body.rateLimit, null);
});

t.test('revoke is idempotent and writes one activity entry', async (t) => {
  const created = await asTeam('POST', keysPath, { name: 'to-revoke' });
  const first = await asTeam('POST', `${keysPath}/${created.body.id}/revoke`);
  const second = await asTeam('POST', `${keysPath}/${created.body.id}/revoke`);
  t.equal(first.status, 200);
  t.equal(second.status, 200);
  t.equal(first.body.status, 'revoked');
  t.equal(second.body.revokedAt, first.body.revokedAt);
  t.equal(first.body.revocation, `/v1/teams/${team.id}/keys/${created.body.id}/revocation`);
  const entries = await cp.adminDb.query(`SELECT 1 FROM activity WHERE action = 'key.revoked' AND target_id = $1`, [created.body.id]);
  t.equal(entries.rowCount, 1);
  const outbox = await cp.adminDb.query(`SELECT kind FROM outbox WHERE key_id = $1`, [created.body.id]);
  t.same(outbox.rows, [{ kind: 'key.revoked' }], 'one revocation event in the outbox');
  const patch = await asTeam('PATCH', `${keysPath}/${created.body.id}`, { name: 'again' });
  t.equal(patch.status, 409);
  t.equal(patch.body.error.code, 'key_revoked');
  const reuse = await asTeam('POST', keysPath, { name: 'to-revoke' });
  t.equal(reuse.status, 201, 'a revoked key name can be reused');
});

t.test('concurrent revokes of one key log it once', async (t) => {
  const created = await asTeam('POST', keysPath, { name: 'race-revoke' });
  const results = await Promise.all(Array.from({ length: 8 }, () => asTeam('POST', `${keysPath}/${created.body.id}/revoke`)));
  t.ok(results.every((result) => result.status === 200));
  const entries = await cp.adminDb.query(`SELECT 1 FROM activity WHERE action = 'key.revoked' AND target_id = $1`, [created.body.id]);
  t.equal(entries.rowCount, 1);
});

t.test('rotate returns a new secret and queues the old hash for eviction', async (t) => {
  const created = await asTeam('POST', keysPath, { name: 'to-rotate' });
  const rotated = await asTeam('POST', `${keysPath}/${created.body.id}/rotate`);
  t.equal(rotated.status, 200);
  t.ok(isWellFormedApiKey(rotated.body.key));
  t.not(rotated.body.key, created.body.key);
  t.equal(rotated.body.id, created.body.id);
  const event = await cp.adminDb.query<{ kind: string; key_hash: Uint8Array }>(`SELECT kind, key_hash FROM outbox WHERE key_id = $1`, [created.body.id]);
  t.equal(event.rows[0]!.kind, 'key.rotated');
  t.same(Buffer.from(event.rows[0]!.key_hash), sha256(created.body.key), 'the old secret is the one evicted');
});

t.test('every mutation is in the activity log, newest first', async (t) => {
  const created = await asTeam('POST', keysPath, { name: 'audited' });
  await asTeam('PATCH', `${keysPath}/${created.body.id}`, { name: 'audited-2' });
  await asTeam('POST', `${keysPath}/${created.body.id}/rotate`);
  await asTeam('POST', `${keysPath}/${created.body.id}/revoke`);
  const activity = await asTeam('GET', `/v1/teams/${team.id}/activity?limit=4`);
  t.same(
    activity.body.data.map((item: any) => item.action),
    ['key.revoked', 'key.rotated', 'key.updated', 'key.created'],
  );
  const revoked = activity.body.data[0];
  t.equal(revoked.details.revocation, `/v1/teams/${team.id}/keys/${created.body.id}/revocation`, 'revocation entry links to its status');
});

t.test('status filter and search', async (t) => {
  const other = await cp.createTeam();
  const path = `/v1/teams/${other.id}/keys`;
  const ids: Record<string, string> = {};
  for (const name of ['Alpha one', 'alpha two', 'beta', 'Ünïcode 🚀']) {
    const created = await cp.request('POST', path, { token: other.token, body: { name } });
    ids[name] = created.body.id;
  }
  await cp.request('POST', `${path}/${ids.beta}/revoke`, { token: other.token });
  const search = async (query: string) =>
    (await cp.request('GET', `${path}?${query}`, { token: other.token })).body.data.map((key: any) => key.name).sort();
  t.same(await search('q=ALPHA'), ['Alpha one', 'alpha two'], 'case-insensitive name prefix');
  t.same(await search('status=revoked'), ['beta']);
  t.same(await search('status=active&q=al'), ['Alpha one', 'alpha two']);
  t.same(await search(`q=${encodeURIComponent('ünï')}`), ['Ünïcode 🚀']);
  const prefix = (await cp.request('GET', `${path}/${ids.beta}`, { token: other.token })).body.prefix;
  t.same(await search(`q=${prefix}`), ['beta'], 'search by key prefix');
  const total = await cp.request('GET', path, { token: other.token });
  t.equal(total.body.total, 4);
  t.equal(total.body.totalCapped, false);
});

t.test('expired keys report status expired', async (t) => {
  const created = await asTeam('POST', keysPath, { name: 'short-lived', expiresAt: new Date(Date.now() + 60_000).toISOString() });
  await cp.adminDb.query(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [created.body.id]);
  const fetched = await asTeam('GET', `${keysPath}/${created.body.id}`);
  t.equal(fetched.body.status, 'expired');
  const expired = await asTeam('GET', `${keysPath}?status=expired`);
  t.same(expired.body.data.map((key: any) => key.id), [created.body.id]);
});
