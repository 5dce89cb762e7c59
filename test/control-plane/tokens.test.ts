import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { createFirstAdminToken } from '../../control-plane/bootstrap.js';
import { createControlPlane } from '../../control-plane/control-plane.js';
import { createPgDatabase } from '../../control-plane/db/pg-database.js';
import { SCOPES } from '../../control-plane/tokens/scopes.js';
import { sha256 } from '../../lib/hash.js';
import { generateToken, isWellFormedToken } from '../../lib/secret-format.js';
import { createApiClient, startTestControlPlane, testControlPlaneOptions } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';
import { createTestDatabase } from '../helpers/postgres.js';

const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const team = await cp.createTeam();
const tokensPath = `/v1/teams/${team.id}/tokens`;

async function createToken(body: Record<string, unknown>, token = team.token) {
  const created = await cp.request('POST', tokensPath, { token, body });
  if (created.status !== 201) throw new Error(`token: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body as { id: string; token: string; scopes: string[]; expiresAt: string | null };
}

const activityCount = async () => Number((await cp.adminDb.query<{ n: number }>('SELECT count(*)::int AS n FROM activity')).rows[0]!.n);
const tokenCount = async () => Number((await cp.adminDb.query<{ n: number }>('SELECT count(*)::int AS n FROM tokens')).rows[0]!.n);

t.test("the test helper's team token, made with just a name, has every team scope", async (t) => {
  const me = await cp.request('GET', '/v1/me', { token: team.token });
  t.equal(me.body.kind, 'team');
  t.same(me.body.scopes, [...SCOPES]);
  t.same(me.body.token.scopes, [...SCOPES]);
  t.equal(me.body.team.id, team.id);
});

t.test('a token is created with scopes, shown once, stored as a hash, and logged', async (t) => {
  const created = await createToken({ name: 'ci', scopes: ['keys:read', 'usage:read'], expiresAt: '2099-01-01T00:00:00.000Z' });
  t.ok(isWellFormedToken(created.token));
  t.same(created.scopes, ['keys:read', 'usage:read']);
  t.equal(created.expiresAt, '2099-01-01T00:00:00.000Z');
  const stored = await cp.adminDb.query<{ token_hash: Uint8Array; prefix: string }>('SELECT token_hash, prefix FROM tokens WHERE id = $1', [created.id]);
  t.same(Buffer.from(stored.rows[0]!.token_hash), sha256(created.token));
  t.equal(stored.rows[0]!.prefix, created.token.slice(0, 13), 'the public prefix is kept');
  const read = await cp.request('GET', `${tokensPath}/${created.id}`, { token: team.token });
  t.notOk('token' in read.body, 'reading it never shows the secret');
  const entry = await cp.adminDb.query<{ actor_type: string; details: Record<string, unknown> }>(
    `SELECT actor_type, details FROM activity WHERE action = 'token.created' AND target_id = $1`,
    [created.id],
  );
  t.equal(entry.rowCount, 1, 'one activity entry');
  t.equal(entry.rows[0]!.actor_type, 'team_token');
  t.same(entry.rows[0]!.details.scopes, ['keys:read', 'usage:read']);
});

t.test('the token list is newest first, in keyset pages served by an index', async (t) => {
  const other = await cp.createTeam();
  const made: string[] = [];
  for (let i = 0; i < 5; i++) made.push((await createToken({ name: `listed-${i}` })).id);
  const seen: any[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await cp.request('GET', `${tokensPath}?limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, { token: team.token });
    t.equal(page.status, 200);
    t.ok(page.body.data.length <= 2);
    seen.push(...page.body.data);
    cursor = page.body.nextCursor;
  } while (cursor !== null);
  const ids = seen.map((token) => token.id);
  t.equal(new Set(ids).size, ids.length, 'no token twice');
  t.same(ids.slice(0, 5), [...made].reverse(), 'newest first');
  t.ok(ids.includes((await cp.request('GET', '/v1/me', { token: team.token })).body.token.id), 'the team token itself is listed');
  t.notOk(ids.includes((await cp.request('GET', '/v1/me', { token: other.token })).body.token.id), "another team's token is not");
  for (const token of seen) {
    t.same(Object.keys(token).sort(), ['createdAt', 'createdBy', 'expiresAt', 'id', 'lastUsedAt', 'name', 'prefix', 'revokedAt', 'scopes', 'status', 'teamId'], `${token.name}: no secret`);
  }
  // With a handful of rows the planner may prefer a scan; force its hand as a large table would.
  await cp.adminDb.transaction(async (tx) => {
    await tx.query('SET LOCAL enable_seqscan = off');
    const forced = await tx.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN SELECT id FROM tokens WHERE team_id = $1 AND (created_at, id) < (now(), 'x') ORDER BY created_at DESC, id DESC LIMIT 3`,
      [team.id],
    );
    const text = forced.rows.map((row) => row['QUERY PLAN']).join('\n');
    t.match(text, /Index (Only )?Scan using tokens_team_created/, 'the list walks tokens_team_created');
    t.notMatch(text, /Sort/, 'in index order, without sorting');
  });
});

t.test('a revoked token is refused on its next call, also by another control plane on the same database', async (t) => {
  const victim = await createToken({ name: 'leaked' });
  const second = await createControlPlane(testControlPlaneOptions(cp.database.url, { adminToken: cp.adminToken, nodeToken: cp.nodeToken }));
  t.teardown(() => second.close());
  const there = createApiClient(second.url, victim.token);
  t.equal((await there.request('GET', `/v1/teams/${team.id}/keys`)).status, 200, 'works on the second control plane');
  t.equal((await cp.request('GET', `/v1/teams/${team.id}/keys`, { token: victim.token })).status, 200, 'and on the first');
  const activityBefore = await activityCount();
  const revoked = await cp.request('POST', `${tokensPath}/${victim.id}/revoke`, { token: team.token });
  t.equal(revoked.status, 200);
  t.equal(revoked.body.status, 'revoked');
  for (const client of [there, createApiClient(cp.url, victim.token)]) {
    const refused = await client.request('GET', `/v1/teams/${team.id}/keys`);
    t.equal(refused.status, 401);
    t.equal(refused.body.error.code, 'token_revoked');
  }
  const again = await cp.request('POST', `${tokensPath}/${victim.id}/revoke`, { token: team.token });
  t.equal(again.body.revokedAt, revoked.body.revokedAt, 'revoking again changes nothing');
  t.equal(await activityCount(), activityBefore + 1, 'one token.revoked entry');
  const unknown = await cp.request('POST', `${tokensPath}/tok_doesnotexist/revoke`, { token: team.token });
  t.equal(unknown.body.error.code, 'token_not_found');
});

t.test('a token with an expiry is refused once it has passed, and listed as expired', async (t) => {
  const expiresAt = new Date(Date.now() + 3_000).toISOString();
  const shortLived = await createToken({ name: 'short-lived', expiresAt });
  t.equal((await cp.request('GET', '/v1/me', { token: shortLived.token })).status, 200, 'works before its expiry');
  const refused = await waitFor(
    async () => {
      const response = await cp.request('GET', '/v1/me', { token: shortLived.token });
      return response.status === 401 && response.body;
    },
    { what: 'the token to expire', timeoutMs: 15_000 },
  );
  t.equal(refused.error.code, 'token_expired');
  t.ok(Date.now() >= Date.parse(expiresAt), 'not before its time');
  t.equal((await cp.request('GET', `${tokensPath}/${shortLived.id}`, { token: team.token })).body.status, 'expired');
  const past = await cp.request('POST', tokensPath, { token: team.token, body: { name: 'past', expiresAt: '2001-01-01T00:00:00Z' } });
  t.equal(past.body.error.code, 'expires_at_in_past');
});

t.test('each call needs its scope, and 403 scope_missing names it', async (t) => {
  const reader = await createToken({ name: 'reader', scopes: ['keys:read'] });
  const as = (method: string, path: string, body?: unknown) => cp.request(method, path, { token: reader.token, body });
  t.equal((await as('GET', `/v1/teams/${team.id}/keys`)).status, 200, 'keys:read lists keys');
  t.equal((await as('GET', `/v1/teams/${team.id}/keys.csv`)).status, 200, 'and exports them');
  const before = await activityCount();
  for (const [method, path, body, scope] of [
    ['POST', `/v1/teams/${team.id}/keys`, { name: 'nope' }, 'keys:write'],
    ['POST', `/v1/teams/${team.id}/keys/bulk`, { keys: [{ name: 'nope' }] }, 'keys:write'],
    ['GET', `/v1/teams/${team.id}/usage`, undefined, 'usage:read'],
    ['GET', `/v1/teams/${team.id}/usage.csv`, undefined, 'usage:read'],
    ['GET', `/v1/teams/${team.id}/activity`, undefined, 'activity:read'],
    ['GET', tokensPath, undefined, 'tokens:write'],
    ['POST', tokensPath, { name: 'escalate' }, 'tokens:write'],
  ] as const) {
    const response = await as(method, path, body);
    t.equal(response.status, 403, `${method} ${path}`);
    t.equal(response.body.error.code, 'scope_missing');
    t.match(response.body.error.message, `"${scope}"`, `names ${scope}`);
  }
  t.equal(await activityCount(), before, 'nothing was written');
});

t.test('a token creates only tokens with a subset of its scopes, expiring no later than itself', async (t) => {
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
  const delegate = await createToken({ name: 'delegate', scopes: ['keys:read', 'tokens:write'], expiresAt });
  const tokensBefore = await tokenCount();
  const wider = await cp.request('POST', tokensPath, { token: delegate.token, body: { name: 'wider', scopes: ['keys:read', 'keys:write'] } });
  t.equal(wider.status, 403);
  t.equal(wider.body.error.code, 'scope_missing');
  t.match(wider.body.error.message, '"keys:write"');
  const later = await cp.request('POST', tokensPath, { token: delegate.token, body: { name: 'later', expiresAt: '2099-01-01T00:00:00Z' } });
  t.equal(later.status, 422);
  t.equal(later.body.error.code, 'token_outlives_creator');
  t.equal(await tokenCount(), tokensBefore, 'neither was created');
  const narrower = await createToken({ name: 'narrower', scopes: ['keys:read'] }, delegate.token);
  t.same(narrower.scopes, ['keys:read']);
  t.equal(narrower.expiresAt, expiresAt, 'by default it expires with its creator');
  const inherited = await createToken({ name: 'inherited' }, delegate.token);
  t.same(inherited.scopes, ['keys:read', 'tokens:write'], "by default it has its creator's scopes");
  const entry = await cp.adminDb.query<{ actor_id: string }>(`SELECT actor_id FROM activity WHERE action = 'token.created' AND target_id = $1`, [narrower.id]);
  t.equal(entry.rows[0]!.actor_id, delegate.id, 'the activity entry names the creating token');
  t.equal((await cp.request('GET', `${tokensPath}/${narrower.id}`, { token: team.token })).body.createdBy, delegate.id);
});

t.test('a team token can rotate itself: the old secret stops at once', async (t) => {
  const rotating = await createToken({ name: 'rotating', scopes: ['keys:read'] });
  const rotated = await cp.request('POST', '/v1/me/rotate', { token: rotating.token });
  t.equal(rotated.status, 200);
  t.equal(rotated.body.id, rotating.id, 'the same token');
  t.not(rotated.body.token, rotating.token);
  t.same(rotated.body.scopes, ['keys:read'], 'with the same scopes');
  t.equal((await cp.request('GET', '/v1/me', { token: rotating.token })).body.error.code, 'token_invalid', 'the old secret is refused');
  t.equal((await cp.request('GET', '/v1/me', { token: rotated.body.token })).status, 200, 'the new one works');
  const entry = await cp.adminDb.query(`SELECT 1 FROM activity WHERE action = 'token.rotated' AND target_id = $1 AND team_id = $2`, [rotating.id, team.id]);
  t.equal(entry.rowCount, 1);
});

t.test('the admin token set by ADMIN_TOKEN cannot be rotated through the API', async (t) => {
  const response = await cp.request('POST', '/v1/me/rotate');
  t.equal(response.status, 409);
  t.equal(response.body.error.code, 'admin_token_configured');
  t.equal((await cp.request('GET', '/v1/teams')).status, 200, 'and keeps working');
});

t.test('team tokens see pool names and countries, never exits; the admin sees exits, credentials redacted', async (t) => {
  const created = await cp.request('POST', '/v1/pools', { body: { name: 'hidden', exits: [{ country: 'DE', url: 'http://user:hunter2@10.1.2.3:3128' }] } });
  t.equal(created.status, 201);
  const asTeam = [await cp.request('GET', '/v1/pools', { token: team.token }), await cp.request('GET', '/v1/pools/hidden', { token: team.token })];
  const list = asTeam[0]!.body.data.find((pool: any) => pool.name === 'hidden');
  for (const pool of [list, asTeam[1]!.body]) {
    t.equal(pool.name, 'hidden');
    t.same(pool.countries.map((country: any) => country.country), ['DE']);
    t.notOk('exits' in pool, 'no exits');
    t.notMatch(JSON.stringify(pool), /10\.1\.2\.3|3128|hunter2|user/, 'no URL, host, port or credential anywhere');
  }
  const asAdmin = await cp.request('GET', '/v1/pools/hidden');
  t.same(asAdmin.body.exits.map((exit: any) => exit.url), ['http://user:***@10.1.2.3:3128']);
});

t.test('the bootstrap admin token rotates; the old one stops at once and a restart prints no new one', async (t) => {
  const fresh = await startTestControlPlane({ adminToken: undefined });
  t.teardown(() => fresh.close());
  const bootstrap = (await createFirstAdminToken(fresh.adminDb))!;
  t.ok(isWellFormedToken(bootstrap), 'the first start made an admin token');
  const rotated = await fresh.request('POST', '/v1/me/rotate', { token: bootstrap });
  t.equal(rotated.status, 200);
  t.equal(rotated.body.teamId, null, 'a platform admin token');
  t.equal((await fresh.request('GET', '/v1/teams', { token: bootstrap })).body.error.code, 'token_invalid', 'the old one is refused');
  t.equal((await fresh.request('GET', '/v1/teams', { token: rotated.body.token })).status, 200, 'the new one is admin');
  const entry = await fresh.adminDb.query(`SELECT 1 FROM activity WHERE action = 'token.rotated' AND team_id IS NULL AND target_id = $1`, [rotated.body.id]);
  t.equal(entry.rowCount, 1, 'logged in the platform activity');
  const restarted = await createControlPlane(testControlPlaneOptions(fresh.database.url, { adminToken: undefined, nodeToken: fresh.nodeToken }));
  t.teardown(() => restarted.close());
  t.equal(await createFirstAdminToken(restarted.adminDb), undefined, 'no second bootstrap token');
});

t.test('a team token made before scopes existed keeps every team scope after the upgrade', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const db = createPgDatabase({ url: database.url, maxConnections: 1, statementTimeoutMs: 10_000, connectionTimeoutMs: 10_000, applicationName: 'upgrade' });
  const legacy = generateToken();
  try {
    // The schema as the release before this one left it, with a team token in it.
    await db.exec('CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())');
    for (const file of readdirSync('control-plane/db/migrations').filter((name) => name < '0006').sort()) {
      await db.exec(readFileSync(`control-plane/db/migrations/${file}`, 'utf8'));
      await db.query('INSERT INTO schema_migrations (version) VALUES ($1)', [file.replace(/\.sql$/, '')]);
    }
    await db.query(`INSERT INTO teams (id, name) VALUES ('team_legacy', 'legacy')`);
    await db.query(`INSERT INTO tokens (id, team_id, name, token_hash) VALUES ('tok_legacy', 'team_legacy', 'old', $1)`, [sha256(legacy)]);
  } finally {
    await db.close();
  }
  const upgraded = await createControlPlane(testControlPlaneOptions(database.url, { adminToken: cp.adminToken, nodeToken: cp.nodeToken }));
  t.teardown(() => upgraded.close());
  const client = createApiClient(upgraded.url, legacy);
  t.same((await client.request('GET', '/v1/me')).body.scopes, [...SCOPES]);
  for (const path of ['keys', 'usage', 'activity', 'tokens']) t.equal((await client.request('GET', `/v1/teams/team_legacy/${path}`)).status, 200, path);
  t.equal((await client.request('POST', '/v1/teams/team_legacy/keys', { body: { name: 'still-works' } })).status, 201);
  const listed = (await client.request('GET', '/v1/teams/team_legacy/tokens')).body.data[0];
  t.equal(listed.prefix, null, 'its prefix is unknown: only its hash was ever kept');
});
