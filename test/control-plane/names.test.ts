import t from 'tap';
import { startTestControlPlane } from '../helpers/control-plane.js';

const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const team = await cp.createTeam();
const existing = await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'existing' } });

/** Every call that takes free text a person typed, and the field it names in its error. */
const FIELDS: { call: string; method: string; path: string; body: (name: string) => unknown; field: string }[] = [
  { call: 'create a team', method: 'POST', path: '/v1/teams', body: (name) => ({ name }), field: 'name' },
  { call: 'create a key', method: 'POST', path: `/v1/teams/${team.id}/keys`, body: (name) => ({ name }), field: 'name' },
  { call: 'rename a key', method: 'PATCH', path: `/v1/teams/${team.id}/keys/${existing.body.id}`, body: (name) => ({ name }), field: 'name' },
  { call: 'create keys in bulk', method: 'POST', path: `/v1/teams/${team.id}/keys/bulk`, body: (name) => ({ keys: [{ name: 'fine' }, { name }] }), field: 'keys.1.name' },
  { call: 'create a token', method: 'POST', path: `/v1/teams/${team.id}/tokens`, body: (name) => ({ name }), field: 'name' },
];

const REFUSED: [string, string][] = [
  ['NUL', '\u0000'],
  ['a line feed', '\n'],
  ['unit separator U+001F', '\u001f'],
  ['DEL', '\u007f'],
  ['a C1 control (NEL)', '\u0085'],
  ['a C1 control (U+009F)', '\u009f'],
  ['LEFT-TO-RIGHT EMBEDDING', '\u202a'],
  ['RIGHT-TO-LEFT OVERRIDE', '\u202e'],
  ['LEFT-TO-RIGHT ISOLATE', '\u2066'],
  ['POP DIRECTIONAL ISOLATE', '\u2069'],
];

async function counts(): Promise<string> {
  const { rows } = await cp.adminDb.query(
    `SELECT (SELECT count(*) FROM teams) AS teams, (SELECT count(*) FROM api_keys) AS keys, (SELECT count(*) FROM tokens) AS tokens,
            (SELECT count(*) FROM activity) AS activity, (SELECT string_agg(name, ',') FROM api_keys) AS names`,
  );
  return JSON.stringify(rows[0]);
}

for (const { call, method, path, body, field } of FIELDS) {
  t.test(`${call}: control characters and bidirectional overrides are refused with 400 naming "${field}"`, async (t) => {
    for (const [what, character] of REFUSED) {
      const before = await counts();
      const response = await cp.request(method, path, { body: body(`invoice${character}fdp.exe`) });
      t.equal(response.status, 400, what);
      t.equal(response.body.error.code, 'invalid_field', what);
      t.match(response.body.error.message, `"${field}"`, `${what}: names the field`);
      t.match(response.body.error.message, 'control characters or bidirectional overrides', `${what}: says what is wrong`);
      t.equal(await counts(), before, `${what}: nothing written`);
    }
  });
}

t.test('names in any script, with emoji and marks, are accepted', async (t) => {
  for (const [index, name] of ['Ünïcödé team', 'فريق الزحف', 'צוות', '爬虫 🕷️', 'left\u200Emark'].entries()) {
    const team = await cp.request('POST', '/v1/teams', { body: { name } });
    t.equal(team.status, 201, name);
    t.equal(team.body.name, name, 'stored as given');
    const key = await cp.request('POST', `/v1/teams/${team.body.id}/keys`, { body: { name: `${name} ${index}` } });
    t.equal(key.status, 201);
  }
});
