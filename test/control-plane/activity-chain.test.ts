import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { runToExit } from '../helpers/processes.js';

const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const work = mkdtempSync(path.join(tmpdir(), 'portcullis-audit-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

async function createKey(team: { id: string; token: string }, name: string) {
  const created = await cp.request('POST', `/v1/teams/${team.id}/keys`, { token: team.token, body: { name } });
  if (created.status !== 201) throw new Error(`key: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body as { id: string };
}

const verify = (team: { id: string; token: string }) => cp.request('GET', `/v1/teams/${team.id}/activity/verify`, { token: team.token });

/** A team with some history: keys made one by one and in bulk, one revoked, one rotated. */
async function teamWithHistory() {
  const team = await cp.createTeam();
  const first = await createKey(team, 'first');
  await createKey(team, 'second');
  await cp.request('POST', `/v1/teams/${team.id}/keys/bulk`, { token: team.token, body: { keys: [{ name: 'bulk-a' }, { name: 'bulk-b' }, { name: 'bulk-c' }] } });
  await cp.request('POST', `/v1/teams/${team.id}/keys/${first.id}/revoke`, { token: team.token });
  const third = await createKey(team, 'third');
  await cp.request('POST', `/v1/teams/${team.id}/keys/${third.id}/rotate`, { token: team.token });
  return team;
}

/** The README's auditor snippet, exactly as printed there. */
function auditorScript(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /```js\n(\/\/ check-export\.mjs[\s\S]*?)```/.exec(readme);
  if (block === null) throw new Error('the README has no ```js block starting with // check-export.mjs');
  const file = path.join(work, 'check-export.mjs');
  writeFileSync(file, block[1]!);
  return file;
}

t.test('every entry of a team links to the one before; verification walks the chain', async (t) => {
  const team = await teamWithHistory();
  const { rows } = await cp.adminDb.query<{ chain_seq: number; prev_hash: string | null; hash: string }>(
    'SELECT chain_seq, prev_hash, hash FROM activity WHERE team_id = $1 ORDER BY chain_seq',
    [team.id],
  );
  // team.created, token.created, 2 keys, 3 bulk keys, a revocation, a key, a rotation
  t.equal(rows.length, 10);
  t.same(rows.map((row) => row.chain_seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'positions 1 to n with no gap');
  t.equal(rows[0]!.prev_hash, null, 'the first entry links to nothing');
  for (let i = 1; i < rows.length; i++) t.equal(rows[i]!.prev_hash, rows[i - 1]!.hash, `entry ${i + 1} links to entry ${i}`);
  const verdict = await verify(team);
  t.equal(verdict.status, 200);
  t.same(verdict.body, { intact: true, entries: 10, head: { seq: 10, hash: rows[9]!.hash }, firstBroken: null });
});

t.test('concurrent writers to one team never fork its chain', async (t) => {
  const team = await cp.createTeam();
  const writers = 40;
  const answers = await Promise.all([
    ...Array.from({ length: writers }, (_, i) => cp.request('POST', `/v1/teams/${team.id}/keys`, { token: team.token, body: { name: `parallel-${i}` } })),
    ...Array.from({ length: 5 }, (_, i) =>
      cp.request('POST', `/v1/teams/${team.id}/keys/bulk`, { token: team.token, body: { keys: [{ name: `bulk-${i}-a` }, { name: `bulk-${i}-b` }] } }),
    ),
  ]);
  t.same(answers.map((answer) => answer.status), Array(writers + 5).fill(201), 'every write succeeded');
  const { rows } = await cp.adminDb.query<{ n: number; distinct_prev: number; max: number }>(
    'SELECT count(*)::int AS n, count(DISTINCT prev_hash)::int AS distinct_prev, max(chain_seq)::int AS max FROM activity WHERE team_id = $1',
    [team.id],
  );
  const expected = 2 + writers + 10;
  t.same(rows[0], { n: expected, distinct_prev: expected - 1, max: expected }, 'one entry per position, no two entries share a predecessor');
  const verdict = await verify(team);
  t.same(verdict.body.intact, true);
  t.equal(verdict.body.entries, expected);
});

t.test('an entry edited in SQL is named by verification', async (t) => {
  const team = await teamWithHistory();
  const { rows } = await cp.adminDb.query<{ id: string }>(`SELECT id FROM activity WHERE team_id = $1 AND chain_seq = 6`, [team.id]);
  const edited = rows[0]!.id;
  await cp.adminDb.query(`UPDATE activity SET details = details || '{"name":"innocent"}' WHERE id = $1`, [edited]);
  const verdict = await verify(team);
  t.equal(verdict.body.intact, false);
  t.match(verdict.body.firstBroken, { seq: 6, id: edited, problem: 'entry_altered' });
  t.match(verdict.body.firstBroken.message, edited);
});

t.test('an edit with its hash recomputed breaks the next link; a deleted entry and a removed tail are found', async (t) => {
  const rehashed = await teamWithHistory();
  await cp.adminDb.query(`UPDATE activity SET action = 'key.updated', hash = repeat('0', 64) WHERE team_id = $1 AND chain_seq = 4`, [rehashed.id]);
  const byHash = await verify(rehashed);
  t.match(byHash.body.firstBroken, { seq: 4, problem: 'entry_altered' }, 'its own hash no longer matches its content');

  const deleted = await teamWithHistory();
  await cp.adminDb.query('DELETE FROM activity WHERE team_id = $1 AND chain_seq = 3', [deleted.id]);
  const gap = await verify(deleted);
  t.match(gap.body.firstBroken, { seq: 4, problem: 'entry_missing' });

  const truncated = await teamWithHistory();
  await cp.adminDb.query('DELETE FROM activity WHERE team_id = $1 AND chain_seq >= 9', [truncated.id]);
  const tail = await verify(truncated);
  t.match(tail.body.firstBroken, { seq: null, problem: 'head_mismatch' });

  const added = await teamWithHistory();
  await cp.adminDb.query(
    `INSERT INTO activity (id, team_id, actor_type, action, target_type, target_id) VALUES ('act_forged', $1, 'system', 'key.revoked', 'key', 'key_x')`,
    [added.id],
  );
  const forged = await verify(added);
  t.match(forged.body.firstBroken, { id: 'act_forged', problem: 'entry_unchained' });
});

t.test("the export streams the chain as JSON lines that the README's auditor snippet checks offline", async (t) => {
  const team = await teamWithHistory();
  const exported = await cp.request('GET', `/v1/teams/${team.id}/activity/export`, { token: team.token });
  t.equal(exported.status, 200);
  t.match(exported.headers.get('content-type'), /^application\/x-ndjson/);
  const text = exported.body as string;
  const lines = text.trimEnd().split('\n').map((line) => JSON.parse(line));
  t.equal(lines.length, 10);
  t.same(lines.map((line) => line.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const head = (await verify(team)).body.head;
  t.equal(lines[9].hash, head.hash, 'the last line carries the head that verification reports');

  const script = auditorScript();
  const good = path.join(work, 'good.jsonl');
  writeFileSync(good, text);
  const ok = spawnSync(process.execPath, [script, good], { encoding: 'utf8' });
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, `intact: 10 entries, head ${head.hash}`);

  const tampered = path.join(work, 'tampered.jsonl');
  writeFileSync(tampered, text.replace('"bulk-b"', '"bulk-z"'));
  const bad = spawnSync(process.execPath, [script, tampered], { encoding: 'utf8' });
  t.not(bad.status, 0, 'a changed line fails the check');
  t.match(bad.stderr, /entry 6 \(act_\w+\) was altered/, "it names the changed entry");
});

t.test('the export keeps to pages: a chain longer than one page comes out whole', async (t) => {
  const team = await cp.createTeam();
  for (let i = 0; i < 3; i++) {
    const keys = Array.from({ length: 400 }, (_, j) => ({ name: `many-${i}-${j}` }));
    const bulk = await cp.request('POST', `/v1/teams/${team.id}/keys/bulk`, { token: team.token, body: { keys } });
    t.equal(bulk.status, 201);
  }
  const exported = await cp.request('GET', `/v1/teams/${team.id}/activity/export`, { token: team.token });
  const seqs = (exported.body as string).trimEnd().split('\n').map((line) => JSON.parse(line).seq as number);
  t.equal(seqs.length, 1_202);
  t.ok(seqs.every((seq, i) => seq === i + 1), 'every position once, in order');
  t.same((await verify(team)).body.entries, 1_202);
});

t.test('another team sees neither the verification nor the export', async (t) => {
  const team = await teamWithHistory();
  const other = await cp.createTeam();
  t.equal((await cp.request('GET', `/v1/teams/${team.id}/activity/verify`, { token: other.token })).status, 404);
  t.equal((await cp.request('GET', `/v1/teams/${team.id}/activity/export`, { token: other.token })).status, 404);
});

t.test('portcullis audit verify checks chains from the database and names a broken one', async (t) => {
  const intact = await teamWithHistory();
  const pool = await cp.request('POST', '/v1/pools', { body: { name: 'audited', exits: [{ country: 'DE', url: 'direct' }] } });
  t.equal(pool.status, 201, 'a pool change is logged in the platform chain');
  const broken = await teamWithHistory();
  const one = await runToExit({ entry: 'bin/portcullis.ts', args: ['audit', 'verify', intact.id], env: { DATABASE_URL: cp.database.url } });
  t.equal(one.code, 0, one.output);
  t.match(one.output, `${intact.id}: intact, 10 entries`);
  const { rows } = await cp.adminDb.query<{ id: string }>('SELECT id FROM activity WHERE team_id = $1 AND chain_seq = 2', [broken.id]);
  await cp.adminDb.query(`UPDATE activity SET ip = '203.0.113.9' WHERE id = $1`, [rows[0]!.id]);
  const all = await runToExit({ entry: 'bin/portcullis.ts', args: ['audit', 'verify'], env: { DATABASE_URL: cp.database.url } });
  t.equal(all.code, 1, all.output);
  t.match(all.output, `${broken.id}: BROKEN entry_altered at entry 2 (${rows[0]!.id})`);
  t.match(all.output, `${intact.id}: intact`);
  t.match(all.output, /platform: intact/);
});

t.test('portcullis audit verify on a database without the chain says so in one line', async (t) => {
  const empty = await createTestDatabase();
  t.teardown(() => empty.drop());
  const run = await runToExit({ entry: 'bin/portcullis.ts', args: ['audit', 'verify'], env: { DATABASE_URL: empty.url } });
  t.equal(run.code, 1);
  t.equal(run.output.trim(), 'portcullis audit verify: this database has no activity chain (a control plane of this version has never started on it)');
});
