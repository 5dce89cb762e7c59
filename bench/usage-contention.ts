/**
 * `npm run bench:usage-contention`: two nodes report usage for the same 40 quota'd keys
 * every 100 ms for 30 s, at the same moments, against a control plane process. Prints the
 * batches sent, how many failed and why (a deadlock shows as 503 `database_busy`), whether
 * the stored totals equal what was reported, and how long a batch took.
 */
import pg from 'pg';
import { generateToken } from '../lib/secret-format.js';
import { inBatches } from '../test/helpers/batches.js';
import { createApiClient } from '../test/helpers/control-plane.js';
import { createTestDatabase } from '../test/helpers/postgres.js';
import { startControlPlaneProcess } from '../test/helpers/processes.js';
import { reportConcurrently } from '../test/helpers/usage-contention.js';
import { printTable, saveResults } from './lib/table.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const database = await createTestDatabase();
const adminToken = generateToken();
const nodeToken = generateToken();
const controlPlane = await startControlPlaneProcess({ DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken, LOG_LEVEL: 'info' });
try {
  const api = createApiClient(controlPlane.url, adminToken);
  const team = (await api.request('POST', '/v1/teams', { body: { name: 'contention' } })).body;
  await api.request('PATCH', `/v1/teams/${team.id}`, { body: { monthlyQuotaBytes: 1_000_000_000_000 } });
  const keys: { id: string; teamId: string }[] = [];
  await inBatches(Array.from({ length: 40 }, (_, i) => i), 10, async (i) => {
    const created = await api.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: `key-${i}`, monthlyQuotaBytes: 1_000_000_000_000 } });
    keys.push({ id: created.body.id, teamId: team.id });
  });
  const result = await reportConcurrently({ controlPlaneUrl: controlPlane.url, nodeToken, keys, nodeIds: ['node-a', 'node-b'], intervalMs: 100, durationMs: SECONDS * 1_000 });
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  const { rows } = await client.query<{ subject_id: string; bytes: string }>(`SELECT subject_id, bytes FROM usage_monthly WHERE subject_type = 'key'`);
  await client.end();
  const exact = rows.length === result.sent.size && rows.every((row) => result.sent.get(row.subject_id) === Number(row.bytes));
  const sorted = [...result.latenciesMs].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
  const table = [
    {
      nodes: 2,
      keys: keys.length,
      seconds: SECONDS,
      batches: result.batches,
      failed: [...result.failures.values()].reduce((sum, count) => sum + count, 0),
      'failure reasons': [...result.failures.keys()].join('; ') || 'none',
      'totals exact': exact ? 'yes' : 'no',
      'p50 ms': at(50),
      'p99 ms': at(99),
    },
  ];
  printTable('Usage batches from two nodes for the same keys', table);
  process.stdout.write(`results: ${saveResults('usage-contention', { table, failures: Object.fromEntries(result.failures) })}\n`);
} finally {
  await controlPlane.stop();
  await database.drop();
}
