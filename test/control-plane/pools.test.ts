import t from 'tap';
import { startTestControlPlane } from '../helpers/control-plane.js';

/**
 * Pools through the admin API: exits may carry a city, state and ASN, validated; every
 * change commits a `pools.changed` outbox row in its own transaction, which is how nodes
 * hear of it within a second.
 */

const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const asNode = { token: cp.nodeToken };

interface OutboxRow {
  seq: string;
  kind: string;
  team_id: string | null;
  key_id: string | null;
  key_hash: Buffer | null;
}

async function outboxRows(): Promise<OutboxRow[]> {
  return (await cp.adminDb.query<OutboxRow>('SELECT seq, kind, team_id, key_id, key_hash FROM outbox ORDER BY seq')).rows;
}

t.test('exits carry city, state and ASN through the admin API and the node API', async (t) => {
  const created = await cp.request('POST', '/v1/pools', {
    body: {
      name: 'placed',
      exits: [
        { country: 'de', city: 'berlin', state: 'be', asn: 3320, url: 'http://127.0.0.1:9001' },
        { country: 'uk', city: 'london', url: 'http://127.0.0.1:9002' },
        { country: 'US', url: 'direct' },
      ],
    },
  });
  t.equal(created.status, 201);
  t.match(created.body.exits, [
    { country: 'DE', city: 'berlin', state: 'be', asn: 3320, url: 'http://127.0.0.1:9001' },
    { country: 'GB', city: 'london', url: 'http://127.0.0.1:9002' },
    { country: 'US', url: 'direct' },
  ]);
  t.notOk('state' in created.body.exits[1], 'a field not given stays absent');
  t.same((await cp.request('GET', '/v1/pools/placed')).body.exits, created.body.exits);
  const forNodes = await cp.request('GET', '/internal/v1/pools', asNode);
  t.match(forNodes.body.pools.find((pool: { name: string }) => pool.name === 'placed').exits, [
    { country: 'DE', city: 'berlin', state: 'be', asn: 3320 },
    { country: 'GB', city: 'london' },
    { country: 'US' },
  ]);
});

t.test('malformed city, state and ASN are refused with the field named, and nothing is written', async (t) => {
  const exit = { country: 'DE', url: 'http://127.0.0.1:9003' };
  const cases: [Record<string, unknown>, string, string][] = [
    [{ ...exit, city: 'Berlin' }, 'invalid_field', 'exits.0.city'],
    [{ ...exit, city: 'new york' }, 'invalid_field', 'exits.0.city'],
    [{ ...exit, city: 'new-york' }, 'invalid_field', 'exits.0.city'],
    [{ ...exit, state: 'california' }, 'invalid_field', 'exits.0.state'],
    [{ ...exit, state: 'CA' }, 'invalid_field', 'exits.0.state'],
    [{ ...exit, asn: 0 }, 'invalid_field', 'exits.0.asn'],
    [{ ...exit, asn: '3320' }, 'invalid_field', 'exits.0.asn'],
    [{ ...exit, asn: 4_294_967_296 }, 'invalid_field', 'exits.0.asn'],
    [{ ...exit, zip: '10115' }, 'unknown_field', 'exits.0.zip'],
  ];
  const before = JSON.stringify([await outboxRows(), (await cp.adminDb.query('SELECT name FROM pools')).rows]);
  for (const [body, code, field] of cases) {
    const response = await cp.request('POST', '/v1/pools', { body: { name: 'bad', exits: [body] } });
    t.equal(response.status, 400, JSON.stringify(body));
    t.equal(response.body.error.code, code);
    t.match(response.body.error.message, field);
  }
  t.equal(JSON.stringify([await outboxRows(), (await cp.adminDb.query('SELECT name FROM pools')).rows]), before, 'no pool and no outbox row');
});

t.test('creating and changing a pool each commit one pools.changed event with no team and no key', async (t) => {
  const start = (await outboxRows()).length;
  t.equal((await cp.request('POST', '/v1/pools', { body: { name: 'evented', exits: [] } })).status, 201);
  t.equal((await cp.request('POST', '/v1/pools', { body: { name: 'evented', exits: [] } })).status, 409, 'a refused create');
  t.equal((await cp.request('PATCH', '/v1/pools/evented', { body: { exits: [{ country: 'FR', url: 'direct' }] } })).status, 200);
  t.equal((await cp.request('PATCH', '/v1/pools/missing', { body: { exits: [] } })).status, 404, 'a refused change');
  const added = (await outboxRows()).slice(start);
  t.same(
    added.map(({ kind, team_id, key_id, key_hash }) => ({ kind, team_id, key_id, key_hash })),
    [
      { kind: 'pools.changed', team_id: null, key_id: null, key_hash: null },
      { kind: 'pools.changed', team_id: null, key_id: null, key_hash: null },
    ],
    'one per change that committed',
  );
  const page = await cp.request('GET', `/internal/v1/revocations?after=${Number(added[0]!.seq) - 1}`, asNode);
  t.match(page.body.events, [{ seq: Number(added[0]!.seq), kind: 'pools.changed', teamId: null, keyId: null, keyHash: null, at: Number }], 'as nodes catch up on it');
});

t.test('the outbox itself refuses a pool event naming a team, and any other event naming none', async (t) => {
  const team = await cp.createTeam();
  const insert = (kind: string, teamId: string | null) =>
    cp.adminDb.query(`INSERT INTO outbox (seq, kind, team_id) VALUES (nextval('outbox_seq'), $1, $2)`, [kind, teamId]).then(
      () => 'inserted',
      (error: { code?: string }) => error.code,
    );
  t.equal(await insert('pools.changed', team.id), '23514', 'check_violation');
  t.equal(await insert('team.updated', null), '23514');
  t.equal(await insert('team.updated', team.id), 'inserted');
});
