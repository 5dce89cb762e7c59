/**
 * `npm run bench:control-plane`: a team with 1,000,000 keys, then the key list under load
 * (first page, a deep page, filtered searches, key creation), with the OFFSET query at the
 * same depth as the baseline, measured in the same run; then the whole team exported as
 * CSV, with the server's memory sampled while it streams.
 */
import { readFileSync } from 'node:fs';
import { createCursorCodec } from '../control-plane/http/cursor.js';
import { createPgDatabase } from '../control-plane/db/pg-database.js';
import { generateToken } from '../lib/secret-format.js';
import { freePort } from '../test/helpers/ports.js';
import { createTestDatabase } from '../test/helpers/postgres.js';
import { seedKeys } from '../test/helpers/seed-keys.js';
import { pinSelf, startProcess } from '../test/helpers/processes.js';
import { loadRow, runLoad, type LoadResult } from './lib/load.js';
import { printTable, saveResults } from './lib/table.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = 32;
const DEPTH = Math.floor(KEYS / 2);

pinSelf(1);
const database = await createTestDatabase();
const adminToken = generateToken();
const port = await freePort();
const server = await startProcess({
  core: 0,
  entry: 'bin/portcullis.ts',
  args: ['control-plane'],
  env: { DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: generateToken(), PORT: String(port), LOG_LEVEL: 'info', ADMIN_POOL_SIZE: '16' },
  ready: /Server listening/,
});
const base = `http://127.0.0.1:${port}`;
const pool = createPgDatabase({ url: database.url, maxConnections: 8, statementTimeoutMs: 300_000, connectionTimeoutMs: 10_000, applicationName: 'bench' });

try {
  const admin = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
  const team = (await (await fetch(`${base}/v1/teams`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'bench' }) })).json()) as { id: string };
  const token = (await (
    await fetch(`${base}/v1/teams/${team.id}/tokens`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'bench' }) })
  ).json()) as { token: string };

  process.stdout.write(`seeding ${KEYS.toLocaleString('en-US')} keys…\n`);
  const seedStarted = performance.now();
  await seedKeys(pool, { teamId: team.id, count: KEYS });
  const seedSeconds = (performance.now() - seedStarted) / 1000;
  process.stdout.write(`seeded in ${seedSeconds.toFixed(1)} s (set-based insert and VACUUM ANALYZE)\n`);

  const secret = (await pool.query<{ value: string }>(`SELECT value FROM settings WHERE name = 'cursor_secret'`)).rows[0]!.value;
  const position = (
    await pool.query<{ position: string; id: string }>(
      'SELECT created_at::text AS position, id FROM api_keys WHERE team_id = $1 ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1',
      [team.id, DEPTH - 1],
    )
  ).rows[0]!;
  const deepCursor = createCursorCodec(secret).encode(`keys:${team.id}::`, [position.position, position.id]);

  const headers = { authorization: `Bearer ${token.token}` };
  const keys = `/v1/teams/${team.id}/keys`;
  const scenarios: { title: string; path: string }[] = [
    { title: 'first page', path: `${keys}?limit=50` },
    { title: `deep page (${DEPTH.toLocaleString('en-US')} keys in)`, path: `${keys}?limit=50&cursor=${encodeURIComponent(deepCursor)}` },
    { title: 'search: name prefix (1,000 matches)', path: `${keys}?limit=50&q=seed-a-0123` },
    { title: 'search: broad prefix (all keys)', path: `${keys}?limit=50&q=seed` },
    { title: 'filter: status=revoked', path: `${keys}?limit=50&status=revoked` },
  ];
  const results: LoadResult[] = [];
  for (const scenario of scenarios) {
    // A short warm-up so the first scenario does not also pay for JIT and cold caches.
    await runLoad({ title: 'warm-up', url: base, path: scenario.path, headers, connections: CONNECTIONS, durationSeconds: 1 });
    results.push(await runLoad({ title: scenario.title, url: base, path: scenario.path, headers, connections: CONNECTIONS, durationSeconds: DURATION }));
  }
  let created = 0;
  results.push(
    await runLoad({
      title: 'create key (POST)',
      url: base,
      method: 'POST',
      path: keys,
      headers: { ...headers, 'content-type': 'application/json' },
      connections: CONNECTIONS,
      durationSeconds: DURATION,
      setupRequest: (request) => ({ ...request, body: JSON.stringify({ name: `bench-created-${process.pid}-${++created}` }) }),
    }),
  );

  // The baseline: the same depth reached with OFFSET, as the old release paginated.
  const sqlRows: Record<string, string | number>[] = [];
  for (const [title, sql, params] of [
    ['SQL: keyset page at depth', `SELECT id FROM api_keys WHERE team_id = $1 AND (created_at, id) < ($2::timestamptz, $3) ORDER BY created_at DESC, id DESC LIMIT 51`, [team.id, position.position, position.id]],
    ['SQL: OFFSET page at depth (baseline)', `SELECT id FROM api_keys WHERE team_id = $1 ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 51`, [team.id, DEPTH]],
  ] as const) {
    const latencies: number[] = [];
    const end = performance.now() + Math.min(DURATION, 5) * 1000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < end) {
          const started = performance.now();
          await pool.query(sql, params as unknown as unknown[]);
          latencies.push(performance.now() - started);
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    sqlRows.push({
      scenario: title,
      conns: 8,
      'req/s (2xx)': Math.round(latencies.length / Math.min(DURATION, 5)),
      'p50 ms': latencies[Math.floor(latencies.length / 2)]!,
      'p99 ms': latencies[Math.floor(latencies.length * 0.99)]!,
      'non-2xx': 0,
    });
  }

  const exported = await timeExport(`${base}${keys}.csv`, headers, server.pid);

  const first = results[0]!;
  const deep = results[1]!;
  const rows = [
    ...results.map((result) => loadRow(result, { 'p99 ≤ 50 ms': result.p99Ms <= 50 ? 'yes' : 'NO' })),
    ...sqlRows,
  ];
  printTable(`Key list, team of ${KEYS.toLocaleString('en-US')} keys (seeded in ${seedSeconds.toFixed(1)} s), ${CONNECTIONS} connections, ${DURATION} s each`, rows);
  process.stdout.write(`deep page p99 / first page p99 = ${(deep.p99Ms / first.p99Ms).toFixed(2)} (target ≤ 1.5)\n`);
  printTable(`Export of every key as CSV (GET …/keys.csv), one client`, [
    {
      keys: exported.rows,
      seconds: exported.seconds,
      'rows/s': Math.round(exported.rows / exported.seconds),
      MB: exported.bytes / 1e6,
      'server RSS before, MB': exported.rssBefore,
      'server RSS peak, MB': exported.rssPeak,
    },
  ]);
  process.stdout.write(`results: ${saveResults('control-plane', { keys: KEYS, seedSeconds, results, sqlRows, exported })}\n`);
} finally {
  await pool.close();
  await server.stop();
  await database.drop();
}

/** Resident memory of a process, in MB, from /proc (Linux). */
function residentMegabytes(pid: number): number {
  const kilobytes = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kilobytes ?? 0) / 1024;
}

/** Reads a whole CSV export, counting its rows, while sampling the server's memory. */
async function timeExport(url: string, headers: Record<string, string>, pid: number) {
  const rssBefore = residentMegabytes(pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, residentMegabytes(pid))), 50);
  const started = performance.now();
  const response = await fetch(url, { headers });
  let bytes = 0;
  let lines = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  if (response.status !== 200) throw new Error(`export answered ${response.status}`);
  return { rows: lines - 1, bytes, seconds, rssBefore, rssPeak };
}
