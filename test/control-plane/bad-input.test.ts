import t from 'tap';
import { generateApiKey, generateToken } from '../../lib/secret-format.js';
import { startTestControlPlane } from '../helpers/control-plane.js';

const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const team = await cp.createTeam();
const keysPath = `/v1/teams/${team.id}/keys`;
const existing = await cp.request('POST', keysPath, { body: { name: 'existing' } });

async function countRows(): Promise<string> {
  const { rows } = await cp.adminDb.query(
    `SELECT (SELECT count(*) FROM api_keys) AS keys, (SELECT count(*) FROM activity) AS activity,
            (SELECT count(*) FROM outbox) AS outbox, (SELECT count(*) FROM teams) AS teams, (SELECT count(*) FROM pools) AS pools`,
  );
  return JSON.stringify(rows[0]);
}

interface Case {
  name: string;
  method: string;
  path: string;
  body?: unknown;
  rawBody?: string;
  token?: string | null;
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const cases: Case[] = [
  { name: 'unknown field', method: 'POST', path: keysPath, body: { name: 'x', colour: 'red' }, status: 400, code: 'unknown_field' },
  { name: 'unknown nested field', method: 'POST', path: keysPath, body: { name: 'x', rateLimit: { requestsPerSecond: 1, per: 's' } }, status: 400, code: 'unknown_field' },
  { name: 'missing name', method: 'POST', path: keysPath, body: {}, status: 400, code: 'missing_field' },
  { name: 'name of wrong type', method: 'POST', path: keysPath, body: { name: 42 }, status: 400, code: 'invalid_field' },
  { name: 'pools of wrong type', method: 'POST', path: keysPath, body: { name: 'x', pools: 'residential' }, status: 400, code: 'invalid_field' },
  { name: 'empty name', method: 'POST', path: keysPath, body: { name: '' }, status: 400, code: 'invalid_field' },
  { name: 'name over 200 characters', method: 'POST', path: keysPath, body: { name: 'x'.repeat(201) }, status: 400, code: 'invalid_field' },
  { name: 'NUL in name', method: 'POST', path: keysPath, body: { name: 'a\u0000b' }, status: 400, code: 'invalid_field' },
  { name: 'lone surrogate in name', method: 'POST', path: keysPath, rawBody: '{"name":"a\\ud800b"}', status: 400, code: 'invalid_field' },
  { name: 'bad expiresAt', method: 'POST', path: keysPath, body: { name: 'x', expiresAt: 'tomorrow' }, status: 400, code: 'invalid_field' },
  { name: 'expiresAt in the past', method: 'POST', path: keysPath, body: { name: 'x', expiresAt: '2001-01-01T00:00:00Z' }, status: 422, code: 'expires_at_in_past' },
  { name: 'unknown pool', method: 'POST', path: keysPath, body: { name: 'x', pools: ['nope'] }, status: 422, code: 'pool_unknown' },
  { name: 'unknown country', method: 'POST', path: keysPath, body: { name: 'x', countries: ['XX'] }, status: 422, code: 'country_unknown' },
  { name: 'burst of zero', method: 'POST', path: keysPath, body: { name: 'x', rateLimit: { requestsPerSecond: 10, burst: 0 } }, status: 400, code: 'invalid_field' },
  { name: 'quota of zero bytes', method: 'POST', path: keysPath, body: { name: 'x', monthlyQuotaBytes: 0 }, status: 400, code: 'invalid_field' },
  { name: 'unknown concurrency field', method: 'POST', path: keysPath, body: { name: 'x', concurrency: { perPlanet: 3 } }, status: 400, code: 'unknown_field' },
  { name: 'duplicate active name', method: 'POST', path: keysPath, body: { name: 'EXISTING' }, status: 409, code: 'key_name_taken' },
  { name: 'invalid JSON', method: 'POST', path: keysPath, rawBody: '{"name": ', status: 400, code: 'invalid_json' },
  { name: 'empty JSON body', method: 'POST', path: keysPath, rawBody: '', headers: { 'content-type': 'application/json' }, status: 400, code: 'invalid_json' },
  { name: 'body that is not an object', method: 'POST', path: keysPath, rawBody: '[1,2]', status: 400, code: 'invalid_field' },
  { name: 'wrong content type', method: 'POST', path: keysPath, rawBody: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
  { name: 'oversized body', method: 'POST', path: keysPath, body: { name: 'x', pools: Array.from({ length: 20_000 }, (_, i) => `pool-${i}`) }, status: 413, code: 'body_too_large' },
  { name: 'empty patch', method: 'PATCH', path: `${keysPath}/${existing.body.id}`, body: {}, status: 400, code: 'invalid_field' },
  { name: 'limit above 500', method: 'GET', path: `${keysPath}?limit=501`, status: 400, code: 'invalid_field' },
  { name: 'limit zero', method: 'GET', path: `${keysPath}?limit=0`, status: 400, code: 'invalid_field' },
  { name: 'limit not a number', method: 'GET', path: `${keysPath}?limit=ten`, status: 400, code: 'invalid_field' },
  { name: 'unknown query parameter', method: 'GET', path: `${keysPath}?sort=name`, status: 400, code: 'unknown_field' },
  { name: 'unknown status', method: 'GET', path: `${keysPath}?status=deleted`, status: 400, code: 'invalid_field' },
  { name: 'garbage cursor', method: 'GET', path: `${keysPath}?cursor=not-a-cursor`, status: 400, code: 'cursor_invalid' },
  { name: 'NUL in search', method: 'GET', path: `${keysPath}?q=%00`, status: 400, code: 'invalid_field' },
  { name: 'unknown team', method: 'GET', path: '/v1/teams/team_doesnotexist/keys', status: 404, code: 'team_not_found' },
  { name: 'malformed team id', method: 'GET', path: '/v1/teams/..%2F..%2Fetc/keys', status: 400, code: 'invalid_field' },
  { name: 'unknown key', method: 'GET', path: `${keysPath}/key_doesnotexist`, status: 404, code: 'key_not_found' },
  { name: 'revoke unknown key', method: 'POST', path: `${keysPath}/key_doesnotexist/revoke`, status: 404, code: 'key_not_found' },
  { name: 'unknown route', method: 'GET', path: '/v1/nothing-here', status: 404, code: 'route_not_found' },
  { name: 'no token', method: 'GET', path: keysPath, token: null, status: 401, code: 'token_missing' },
  { name: 'malformed token', method: 'GET', path: keysPath, token: 'hunter2', status: 401, code: 'token_invalid' },
  { name: 'token with bad checksum', method: 'GET', path: keysPath, token: `${generateToken().slice(0, -1)}x`, status: 401, code: 'token_invalid' },
  { name: 'well-formed unknown token', method: 'GET', path: keysPath, token: generateToken(), status: 401, code: 'token_invalid' },
  { name: 'basic instead of bearer', method: 'GET', path: keysPath, token: null, headers: { authorization: 'Basic YTpi' }, status: 401, code: 'token_invalid' },
  { name: 'duplicate team name', method: 'POST', path: '/v1/teams', body: { name: 'dup' }, status: 201, code: '' },
  { name: 'duplicate team name, case-insensitive', method: 'POST', path: '/v1/teams', body: { name: 'DUP' }, status: 409, code: 'team_name_taken' },
  { name: 'bad pool name', method: 'POST', path: '/v1/pools', body: { name: 'Bad Name', exits: [] }, status: 400, code: 'invalid_field' },
  { name: 'bad exit url', method: 'POST', path: '/v1/pools', body: { name: 'p1', exits: [{ country: 'DE', url: 'ftp://x' }] }, status: 422, code: 'exit_url_invalid' },
  { name: 'node API without node token', method: 'GET', path: '/internal/v1/pools', status: 401, code: 'node_token_invalid' },
  ...verifyCases(),
];

/** The node API's batched verify: a node token, 1 to 100 distinct lower-case SHA-256 hex hashes. */
function verifyCases(): Case[] {
  const hash = 'ab'.repeat(32);
  const path = '/internal/v1/keys/verify';
  const call = (name: string, body: unknown, code = 'invalid_field') => ({ name, method: 'POST', path, token: cp.nodeToken, body, status: 400, code });
  return [
    call('verify without hashes', {}, 'missing_field'),
    call('verify with no hash', { hashes: [] }),
    call('verify with 101 hashes', { hashes: Array.from({ length: 101 }, (_, i) => i.toString(16).padStart(64, '0')) }),
    call('verify with a repeated hash', { hashes: [hash, hash] }),
    call('verify with an upper-case hash', { hashes: [hash.toUpperCase()] }),
    call('verify with a key instead of its hash', { hashes: [generateApiKey()] }),
    call('verify with an unknown field', { hashes: [hash], keys: [] }, 'unknown_field'),
    { name: 'verify with an admin token', method: 'POST', path, body: { hashes: [hash] }, status: 401, code: 'node_token_invalid' },
  ];
}

for (const testCase of cases) {
  t.test(`${testCase.name} → ${testCase.status} ${testCase.code}`, async (t) => {
    const before = await countRows();
    const response = await cp.request(testCase.method, testCase.path, {
      ...(testCase.token !== undefined && { token: testCase.token }),
      ...(testCase.body !== undefined && { body: testCase.body }),
      ...(testCase.rawBody !== undefined && { rawBody: testCase.rawBody }),
      ...(testCase.headers !== undefined && { headers: testCase.headers }),
    });
    t.equal(response.status, testCase.status, JSON.stringify(response.body));
    if (testCase.status >= 400) {
      t.equal(response.body?.error?.code, testCase.code);
      t.type(response.body.error.message, 'string');
      t.equal(await countRows(), before, 'nothing was written');
    }
  });
}

t.test('a cursor is refused when tampered with or reused with other filters', async (t) => {
  for (let i = 0; i < 3; i++) await cp.request('POST', keysPath, { body: { name: `page-${i}` } });
  const first = await cp.request('GET', `${keysPath}?limit=1`);
  const cursor: string = first.body.nextCursor;
  t.type(cursor, 'string');
  const ok = await cp.request('GET', `${keysPath}?limit=1&cursor=${encodeURIComponent(cursor)}`);
  t.equal(ok.status, 200);
  const [payload, signature] = cursor.split('.');
  const forged = Buffer.from(JSON.stringify(['2999-01-01 00:00:00+00', 'key_x'])).toString('base64url');
  for (const bad of [`${forged}.${signature}`, `${payload}.${signature!.slice(1)}`, `${payload}`, `${cursor}.x`]) {
    const response = await cp.request('GET', `${keysPath}?limit=1&cursor=${encodeURIComponent(bad)}`);
    t.equal(response.status, 400);
    t.equal(response.body.error.code, 'cursor_invalid');
  }
  const otherFilter = await cp.request('GET', `${keysPath}?limit=1&status=revoked&cursor=${encodeURIComponent(cursor)}`);
  t.equal(otherFilter.body.error.code, 'cursor_invalid', 'cursor bound to its filters');
  const otherTeam = await cp.createTeam();
  const crossTeam = await cp.request('GET', `/v1/teams/${otherTeam.id}/keys?limit=1&cursor=${encodeURIComponent(cursor)}`);
  t.equal(crossTeam.body.error.code, 'cursor_invalid', 'cursor bound to its team');
});

t.test('errors carry a request id', async (t) => {
  const response = await cp.request('GET', `${keysPath}/key_nope`, { headers: { 'x-request-id': 'trace-123' } });
  t.equal(response.headers.get('x-request-id'), 'trace-123');
});
