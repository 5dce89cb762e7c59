import t from 'tap';
import { createHash } from 'node:crypto';
import { keyListQueries, type KeyListFilter } from '../../control-plane/keys/list.js';
import { keysByHashesQuery } from '../../control-plane/node-api/verify.js';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { seedKeys } from '../helpers/seed-keys.js';

const TEAM_KEYS = 15_000;
const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const team = await cp.createTeam('big');
const neighbour = await cp.createTeam('neighbour');
await seedKeys(cp.adminDb, { teamId: team.id, count: TEAM_KEYS });
// Other teams hold most of the table, as in production, so plans are the realistic ones.
await seedKeys(cp.adminDb, { teamId: neighbour.id, count: 100_000 });
const keysPath = `/v1/teams/${team.id}/keys`;

t.test('a 15,000-key team lists end to end with no duplicates or gaps while keys are inserted', async (t) => {
  let inserting = true;
  let inserted = 0;
  const inserter = (async () => {
    while (inserting) {
      const created = await cp.request('POST', keysPath, { token: team.token, body: { name: `concurrent-${inserted}` } });
      if (created.status !== 201) throw new Error(`insert failed: ${created.status}`);
      inserted++;
    }
  })();
  const seen = new Set<string>();
  const teams = new Set<string>();
  let duplicates = 0;
  let cursor: string | null = null;
  let pages = 0;
  do {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const page = await cp.request('GET', `${keysPath}?limit=100${query}`, { token: team.token });
    t.equal(page.status, 200);
    for (const key of page.body.data) {
      if (seen.has(key.id)) duplicates++;
      seen.add(key.id);
      teams.add(key.teamId);
    }
    cursor = page.body.nextCursor;
    pages++;
  } while (cursor !== null);
  inserting = false;
  await inserter;
  t.ok(inserted > 0, `${inserted} keys were inserted during the listing`);
  t.equal(duplicates, 0, 'no key listed twice');
  const seeded = [...seen].filter((id) => id.startsWith('key_seed'));
  t.equal(seeded.length, TEAM_KEYS, 'every seeded key listed');
  t.ok(pages >= 150, `${pages} pages`);
  t.same([...teams], [team.id], 'no key of the neighbour team');
});

t.test('the first page reports a capped total', async (t) => {
  const page = await cp.request('GET', `${keysPath}?limit=10`, { token: team.token });
  t.equal(page.body.total, 10_000);
  t.equal(page.body.totalCapped, true);
  const revoked = await cp.request('GET', `${keysPath}?limit=10&status=revoked`, { token: team.token });
  t.equal(revoked.body.total, TEAM_KEYS / 10);
  t.equal(revoked.body.totalCapped, false);
  t.ok(revoked.body.data.every((key: any) => key.status === 'revoked'));
});

async function timePage(path: string): Promise<number> {
  const started = process.hrtime.bigint();
  const response = await cp.request('GET', path, { token: team.token });
  if (response.status !== 200) throw new Error(`status ${response.status}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

t.test('page 150 is as fast as page 1 (within 2x)', async (t) => {
  let cursor: string | null = null;
  for (let page = 1; page < 150; page++) {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    cursor = (await cp.request('GET', `${keysPath}?limit=100${query}`, { token: team.token })).body.nextCursor;
  }
  const deepPath = `${keysPath}?limit=100&cursor=${encodeURIComponent(cursor!)}`;
  const firstPath = `${keysPath}?limit=100`;
  const first: number[] = [];
  const deep: number[] = [];
  for (let i = 0; i < 30; i++) {
    first.push(await timePage(firstPath));
    deep.push(await timePage(deepPath));
  }
  const ratio = median(deep) / median(first);
  t.ok(ratio <= 2, `median page 1 ${median(first).toFixed(2)} ms, page 150 ${median(deep).toFixed(2)} ms (ratio ${ratio.toFixed(2)})`);
});

t.test('every list variant is served by an index, never a sequential scan of api_keys', async (t) => {
  await cp.adminDb.query('VACUUM ANALYZE api_keys');
  const deepCursor = ['2020-01-01 00:00:00+00', 'key_zzz'];
  const variants: [string, KeyListFilter, string[] | undefined][] = [
    ['first page', {}, undefined],
    ['deep page', {}, deepCursor],
    ['active', { status: 'active' }, undefined],
    ['revoked, deep', { status: 'revoked' }, deepCursor],
    ['expired', { status: 'expired' }, undefined],
    ['name search', { q: 'seed-a-00012' }, undefined],
    ['broad name search', { q: 'seed' }, deepCursor],
    ['prefix search', { q: 'sk_live_abc' }, undefined],
    ['active name search', { status: 'active', q: 'seed-a-01' }, undefined],
  ];
  for (const [name, filter, after] of variants) {
    const queries = keyListQueries(team.id, filter, 100, after);
    for (const query of [queries.page, queries.total]) {
      if (query === undefined) continue;
      const { rows } = await cp.adminDb.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${query.sql}`, query.params);
      const plan = JSON.stringify(rows[0]!['QUERY PLAN']);
      t.notMatch(plan, /"Node Type":\s*"Seq Scan"/, `${name}: no sequential scan`);
      t.match(plan, /Index (Only )?Scan|Bitmap Index Scan/, `${name}: uses an index`);
    }
  }
});

t.test("the node API's batched key lookup probes the hash index, never scans api_keys", async (t) => {
  const hashes = Array.from({ length: 100 }, (_, i) => createHash('sha256').update(`probe-${i}`).digest('hex'));
  const query = keysByHashesQuery(hashes);
  const { rows } = await cp.adminDb.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${query.sql}`, query.params);
  const plan = JSON.stringify(rows[0]!['QUERY PLAN']);
  t.notMatch(plan, /"Node Type":\s*"Seq Scan",[^{}]*"Relation Name":\s*"api_keys"/, 'no sequential scan of api_keys');
  t.match(plan, /"Index Name":\s*"api_keys_hash_unique"/, 'uses the hash index');
});
