import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../lib/logger.js';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { basic, bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

// The node and explain both let private destinations through, so the origin on 127.0.0.1 is reachable.
const world = await startWorld({ controlPlane: { allowPrivateDestinations: true } });
t.teardown(() => world.close());
const teamPath = `/v1/teams/${world.team.id}`;

const plain = await world.createKey();
const germanOnly = await world.createKey({ countries: ['DE'] });
const revoked = await world.createKey();
await world.cp.request('POST', `${teamPath}/keys/${revoked.id}/revoke`);
const overQuota = await world.createKey({ monthlyQuotaBytes: 1_000 });
await world.cp.adminDb.query(
  `INSERT INTO usage_monthly (subject_type, subject_id, month, bytes, exceeded_at)
   VALUES ('key', $1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 5000, now())`,
  [overQuota.id],
);
const allowlisted = await world.createKey({ allowedClientCidrs: ['203.0.113.0/24'] });
const lockedTeam = await world.cp.createTeam();
const lockedKey = (await world.cp.request('POST', `/v1/teams/${lockedTeam.id}/keys`, { token: lockedTeam.token, body: { name: 'locked' } })).body.key as string;
await world.cp.request('POST', `/v1/teams/${lockedTeam.id}/lockdown`, { token: lockedTeam.token, body: {} });

interface Case {
  name: string;
  key?: string;
  username?: string;
  headers?: Record<string, string>;
  /** Default: a plain request to the origin. `host:port` makes it a CONNECT. */
  destination?: string;
  team?: { id: string; token: string };
}

/** Every case comes from this machine's loopback, which explain is told. */
const CLIENT = '127.0.0.1';

const origin = `${world.origin.url}/explained`;
const cases: Case[] = [
  { name: 'a key with no targeting', key: plain.key },
  { name: 'a country in the username', key: plain.key, username: 'acme-country-de' },
  { name: 'a country in a header', key: plain.key, headers: { 'Proxy-Country': 'US' } },
  { name: 'a country no exit serves', key: plain.key, username: 'acme-country-fr' },
  { name: 'a city no exit carries', key: plain.key, username: 'acme-country-de-city-paris' },
  { name: 'an unknown country', key: plain.key, username: 'acme-country-xx' },
  { name: 'an unknown targeting part', key: plain.key, username: 'acme-country-de-zip-10115' },
  { name: 'a part given twice', key: plain.key, username: 'acme-session-a-session-b' },
  { name: 'a malformed sesstime', key: plain.key, username: 'acme-session-s1-sesstime-9999' },
  { name: 'a country the key is not granted', key: germanOnly.key, username: 'acme-country-us' },
  { name: 'a country the key is granted', key: germanOnly.key, username: 'acme-country-de' },
  { name: 'a pool that does not exist', key: plain.key, username: 'acme-pool-nope' },
  { name: 'a revoked key', key: revoked.key },
  { name: 'a key over its quota', key: overQuota.key },
  { name: 'a key of a locked-down team', key: lockedKey, team: lockedTeam },
  { name: 'a key used from outside its client allowlist', key: allowlisted.key },
  { name: 'a mistyped key', key: `${plain.key.slice(0, -1)}${plain.key.endsWith('A') ? 'B' : 'A'}` },
  { name: 'no credentials', headers: {} },
  { name: 'credentials in Proxy-Authorization', headers: { 'Proxy-Authorization': `Bearer ${plain.key}`, 'Proxy-Country': 'DE' } },
  { name: 'port 25', key: plain.key, destination: 'http://127.0.0.1:25/' },
  { name: 'a CONNECT tunnel', key: plain.key, destination: `127.0.0.1:${world.origin.port}` },
  { name: 'a CONNECT to port 25', key: plain.key, destination: '127.0.0.1:25' },
  { name: 'a CONNECT with targeting no exit serves', key: plain.key, username: 'acme-country-fr', destination: `127.0.0.1:${world.origin.port}` },
];

/** What the real node answers: `ok`, or its X-Portcullis-Error. */
async function throughNode(c: Case): Promise<string> {
  const auth = c.key === undefined ? {} : c.username === undefined ? bearer(c.key) : basic(c.username, c.key);
  const headers = { ...auth, ...c.headers };
  const destination = c.destination ?? origin;
  if (!destination.startsWith('http://')) {
    const tunnel = await proxyConnect(world.node.port, destination, headers);
    tunnel.socket.destroy();
    return tunnel.status === 200 ? 'ok' : (/x-portcullis-error: (\w+)/i.exec(tunnel.head)?.[1] ?? `status ${tunnel.status}`);
  }
  const response = await proxyRequest(world.node.port, destination, headers);
  return response.status === 200 ? 'ok' : String(response.headers['x-portcullis-error'] ?? `status ${response.status}`);
}

async function explain(c: Case) {
  const team = c.team ?? world.team;
  const body = { ...(c.key !== undefined && { key: c.key }), ...(c.username !== undefined && { username: c.username }), ...(c.headers !== undefined && { headers: c.headers }), destination: c.destination ?? origin, clientAddress: CLIENT };
  const answer = await world.cp.request('POST', `/v1/teams/${team.id}/explain`, { token: team.token, body });
  if (answer.status !== 200) throw new Error(`explain ${c.name}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

t.test('explain and the real node give the same outcome for every case of one table', async (t) => {
  const nodeOutcomes: Record<string, string> = {};
  const explained: Record<string, string> = {};
  for (const c of cases) {
    nodeOutcomes[c.name] = await throughNode(c);
    const answer = await explain(c);
    explained[c.name] = answer.outcome === 'allowed' ? 'ok' : answer.refusal.code;
  }
  t.same(explained, nodeOutcomes);
  // The table covers the decisions, not only successes.
  t.ok(new Set(Object.values(nodeOutcomes)).size >= 12, `${new Set(Object.values(nodeOutcomes)).size} distinct outcomes`);
});

t.test('the hint is the one a node sends, and the answer says what it saw', async (t) => {
  const c: Case = { name: 'no exit', key: plain.key, username: 'acme-country-de-city-paris-session-s1' };
  const response = await proxyRequest(world.node.port, origin, basic(c.username!, c.key!));
  const answer = await explain(c);
  t.equal(response.body, `${answer.refusal.code}: ${answer.refusal.hint}\n`, 'the same one-line body');
  t.match(answer, {
    outcome: 'refused',
    refusal: { stage: 'exits', status: 503, code: 'no_exit' },
    credential: { keyPrefix: plain.key.slice(0, 12), source: 'proxy-authorization', country: 'DE', city: 'paris', session: 's1' },
    key: { id: plain.id, status: 'active', lockedDown: false },
    limits: { overQuota: false, monthlyQuotaBytes: null, monthlyRemainingBytes: null },
    destination: { host: '127.0.0.1', port: world.origin.port, connect: false, allowed: true },
    exits: { pools: null, matching: 0, countries: [] },
  });
  t.notMatch(JSON.stringify(answer), plain.key, 'the secret is not echoed');

  const allowed = await explain({ name: 'allowed', key: germanOnly.key, username: 'acme-country-de' });
  t.match(allowed, { outcome: 'allowed', refusal: null, key: { id: germanOnly.id, countries: ['DE'] }, exits: { matching: 2, countries: ['DE'] } });
});

t.test('a key named by id is explained without its secret; another team cannot explain it', async (t) => {
  const byId = await world.cp.request('POST', `${teamPath}/explain`, { token: world.team.token, body: { keyId: germanOnly.id, username: 'acme-country-us' } });
  t.match(byId.body, { outcome: 'refused', refusal: { code: 'country_forbidden' }, credential: { keyPrefix: null, country: 'US' } });
  const missing = await world.cp.request('POST', `${teamPath}/explain`, { token: world.team.token, body: { keyId: 'key_nope' } });
  t.equal(missing.body.error.code, 'key_not_found');
  const other = await world.cp.request('POST', `/v1/teams/${lockedTeam.id}/explain`, { token: lockedTeam.token, body: { key: plain.key } });
  t.match(other.body.refusal, { code: 'key_invalid' }, "another team's key is unknown there");
  t.equal(other.body.key, null);
  t.equal((await world.cp.request('POST', `${teamPath}/explain`, { token: lockedTeam.token, body: { key: plain.key } })).status, 404);
  const bad = await world.cp.request('POST', `${teamPath}/explain`, { token: world.team.token, body: { key: plain.key, destination: 'ftp://x' } });
  t.equal(bad.body.error.code, 'invalid_field');
});

t.test('key secrets sent to explain are never logged', async (t) => {
  let logged = '';
  const sink = new Writable({ write: (chunk, _encoding, done) => ((logged += String(chunk)), done()) });
  const cp = await startTestControlPlane({ logger: createLogger({ level: 'trace', name: 'cp', destination: sink }) });
  t.teardown(() => cp.close());
  const team = await cp.createTeam();
  const key = (await cp.request('POST', `/v1/teams/${team.id}/keys`, { token: team.token, body: { name: 'secret' } })).body.key as string;
  await cp.request('POST', `/v1/teams/${team.id}/explain`, { token: team.token, body: { key, username: 'acme-country-de' } });
  await cp.request('POST', `/v1/teams/${team.id}/explain`, { token: team.token, body: { key, destination: 'ftp://nowhere' } });
  await cp.request('POST', `/v1/teams/${team.id}/explain`, { token: team.token, body: { headers: { 'Proxy-Authorization': `Bearer ${key}` }, unknown: key } });
  t.ok(logged.length > 0, 'the control plane logged at trace level');
  t.notMatch(logged, key.slice(8), 'no part of the secret past its prefix is in the log');
});
