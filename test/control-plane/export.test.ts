import t from 'tap';
import http from 'node:http';
import { csvField } from '../../control-plane/http/csv.js';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { parseCsv } from '../helpers/csv.js';
import { waitFor } from '../helpers/deadline.js';
import { seedKeys } from '../helpers/seed-keys.js';

const SEEDED = 15_000;
const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const team = await cp.createTeam();
await seedKeys(cp.adminDb, { teamId: team.id, count: SEEDED });
const TRICKY = ['a,b', 'say "hi"', '=SUM(A1)', '@cmd', ' padded ', 'naïve ✓'];
for (const name of TRICKY) {
  const created = await cp.request('POST', `/v1/teams/${team.id}/keys`, { token: team.token, body: { name } });
  if (created.status !== 201) throw new Error(`key ${name}: ${created.status}`);
}
const TOTAL = SEEDED + TRICKY.length;

/** The export page histogram's count, sum and pages of at most 1,000 rows, read from /metrics. */
async function exportPages(kind: 'keys' | 'usage'): Promise<{ pages: number; rows: number; upTo1000: number }> {
  const text = (await (await fetch(`${cp.url}/metrics`)).text()).split('\n');
  const value = (prefix: string) => Number(text.find((line) => line.startsWith(prefix))?.split(' ').pop() ?? 0);
  return {
    pages: value(`portcullis_export_page_rows_count{export="${kind}"}`),
    rows: value(`portcullis_export_page_rows_sum{export="${kind}"}`),
    upTo1000: value(`portcullis_export_page_rows_bucket{le="1000",export="${kind}"}`),
  };
}

async function download(path: string): Promise<{ response: Response; rows: string[][] }> {
  const response = await fetch(`${cp.url}${path}`, { headers: { authorization: `Bearer ${team.token}` } });
  return { response, rows: parseCsv(await response.text()) };
}

t.test('csv fields are quoted when they must be, and never start a formula', async (t) => {
  t.equal(csvField('plain'), 'plain');
  t.equal(csvField('a,b'), '"a,b"');
  t.equal(csvField('say "hi"'), '"say ""hi"""');
  t.equal(csvField('two\r\nlines'), '"two\r\nlines"');
  t.equal(csvField(' padded'), '" padded"');
  t.equal(csvField('=1+1'), "'=1+1");
  t.equal(csvField('-2'), "'-2");
  t.equal(csvField(-2), '-2', 'numbers are numbers');
  t.equal(csvField(null), '');
});

t.test(`a ${TOTAL.toLocaleString('en-US')}-key export has every key once, newest first, streamed in pages of 1,000`, async (t) => {
  const before = await exportPages('keys');
  const { response, rows } = await download(`/v1/teams/${team.id}/keys.csv`);
  t.equal(response.status, 200);
  t.match(response.headers.get('content-type'), /^text\/csv; charset=utf-8/);
  t.equal(response.headers.get('content-length'), null, 'streamed: no length known up front');
  const [header, ...keys] = rows;
  t.equal(header![0], 'id');
  t.equal(keys.length, TOTAL, 'one row per key');
  t.ok(
    keys.every((row) => row.length === header!.length),
    'every row has every column',
  );
  t.equal(new Set(keys.map((row) => row[0])).size, TOTAL, 'no key twice');
  const name = header!.indexOf('name');
  t.same(
    keys.slice(0, TRICKY.length).map((row) => row[name]),
    [...TRICKY].reverse().map((tricky) => (/^[=+\-@]/.test(tricky) ? `'${tricky}` : tricky)),
    'the newest first, names intact through quoting',
  );
  const status = header!.indexOf('status');
  t.equal(keys.filter((row) => row[status] === 'revoked').length, SEEDED / 10);
  const after = await exportPages('keys');
  t.equal(after.pages - before.pages, Math.ceil(TOTAL / 1_000), 'read in pages');
  t.equal(after.rows - before.rows, TOTAL);
  t.equal(after.upTo1000 - before.upTo1000, after.pages - before.pages, 'none of them over 1,000 rows');
});

t.test('the export takes the list filters', async (t) => {
  const { rows } = await download(`/v1/teams/${team.id}/keys.csv?status=revoked`);
  t.equal(rows.length - 1, SEEDED / 10);
  t.ok(rows.slice(1).every((row) => row[3] === 'revoked'));
  const search = await download(`/v1/teams/${team.id}/keys.csv?q=seed-a-000012`);
  t.equal(search.rows.length - 1, 10, 'a name prefix');
});

t.test('while the client is not reading, the export holds no database connection', async (t) => {
  const url = new URL(`/v1/teams/${team.id}/keys.csv`, cp.url);
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(url, { headers: { authorization: `Bearer ${team.token}` } }, resolve).on('error', reject);
  });
  t.teardown(() => response.destroy());
  await new Promise<void>((resolve) => response.once('data', () => resolve()));
  response.pause();
  await waitFor(
    () => {
      const stats = cp.adminDb.stats();
      return stats.total === stats.idle && stats.waiting === 0;
    },
    { what: 'every admin connection to be back in the pool' },
  );
  t.pass('the page was fetched, its connection released, and the rest waits for the client');
  let rest = 0;
  response.on('data', (chunk: Buffer) => (rest += chunk.length));
  response.resume();
  await new Promise<void>((resolve) => response.once('end', () => resolve()));
  t.ok(rest > 0, 'and it finishes once the client reads again');
});

t.test('usage exports per key and bucket, walking every key in pages', async (t) => {
  const keyIds = (await cp.adminDb.query<{ id: string }>('SELECT id FROM api_keys WHERE team_id = $1 ORDER BY created_at DESC, id DESC', [team.id])).rows.map((row) => row.id);
  const used = keyIds.filter((_, index) => index % 1_000 === 999);
  const hours = [new Date(Date.now() - 5 * 3_600_000), new Date(Date.now() - 2 * 3_600_000)].map((hour) => new Date(Math.floor(hour.getTime() / 3_600_000) * 3_600_000));
  for (const [index, keyId] of used.entries()) {
    for (const hour of hours) {
      await cp.adminDb.query('INSERT INTO usage_hourly (key_id, team_id, hour, bytes_in, bytes_out, requests, tunnels) VALUES ($1, $2, $3, $4, $5, 1, 0)', [keyId, team.id, hour, 100 + index, 1_000 + index]);
    }
  }
  const before = await exportPages('usage');
  const { response, rows } = await download(`/v1/teams/${team.id}/usage.csv?granularity=hour`);
  t.equal(response.status, 200);
  const [header, ...usage] = rows;
  t.same(header, ['key_id', 'key_name', 'key_prefix', 'start', 'bytes_up', 'bytes_down', 'requests', 'tunnels']);
  t.equal(usage.length, used.length * hours.length, 'a row per key and hour with traffic, none for keys without');
  t.same([...new Set(usage.map((row) => row[0]))], used, 'keys newest first');
  t.same(
    usage.slice(0, 2).map((row) => [row[3], row[4], row[5]]),
    hours.map((hour) => [hour.toISOString(), '100', '1000']),
    "a key's hours oldest first; up is what the node took in from the client, down what it sent out",
  );
  const after = await exportPages('usage');
  t.ok(after.pages - before.pages > 50, `${after.pages - before.pages} pages of keys`);
  const days = await download(`/v1/teams/${team.id}/usage.csv?granularity=day&from=${new Date(Date.now() - 3 * 86_400_000).toISOString()}`);
  const total = days.rows.slice(1).reduce((sum, row) => sum + Number(row[4]), 0);
  t.equal(total, used.reduce((sum, _, index) => sum + 2 * (100 + index), 0), 'daily rows add up the hours');
  const inverted = await cp.request('GET', `/v1/teams/${team.id}/usage.csv?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`, { token: team.token });
  t.equal(inverted.body.error.code, 'range_invalid', 'a bad range is refused before anything is streamed');
});
