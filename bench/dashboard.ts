/**
 * `npm run bench:dashboard`: the keys page of a team with 1,000,000 keys in headless
 * Chromium — time to the first rows and to the 20th page — beside the API latency of the
 * same pages.
 */
import { createPgDatabase } from '../control-plane/db/pg-database.js';
import { launchBrowser } from '../test/helpers/browser.js';
import { startTestControlPlane } from '../test/helpers/control-plane.js';
import { seedKeys } from '../test/helpers/seed-keys.js';
import { printTable, saveResults } from './lib/table.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const PAGES = 20;
const PAGE_SIZE = 100;
const RUNS = 5;

const cp = await startTestControlPlane();
const browser = await launchBrowser();
try {
  const team = await cp.createTeam('dashboard-bench');
  process.stdout.write(`seeding ${KEYS.toLocaleString('en-US')} keys…\n`);
  const seeder = createPgDatabase({ url: cp.database.url, maxConnections: 1, statementTimeoutMs: 600_000, connectionTimeoutMs: 10_000, applicationName: 'seed' });
  await seedKeys(seeder, { teamId: team.id, count: KEYS });
  await seeder.close();

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const browserFirst: number[] = [];
  const browserTwentieth: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    await page.goto(`${cp.url}/`);
    await page.getByLabel('Admin or team token').fill(team.token);
    const started = performance.now();
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('tbody tr').first().waitFor();
    browserFirst.push(performance.now() - started);
    for (let loaded = 1; loaded < PAGES; loaded++) {
      await page.locator('#load-more').click();
      await page.locator('tbody tr').nth((loaded + 1) * PAGE_SIZE - 1).waitFor();
    }
    browserTwentieth.push(performance.now() - started);
    await page.close();
  }

  const apiFirst: number[] = [];
  const apiTwentieth: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let cursor: string | null = null;
    for (let pageNumber = 1; pageNumber <= PAGES; pageNumber++) {
      const started = performance.now();
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const response = await cp.request('GET', `/v1/teams/${team.id}/keys?limit=${PAGE_SIZE}${query}`, { token: team.token });
      const elapsed = performance.now() - started;
      if (pageNumber === 1) apiFirst.push(elapsed);
      if (pageNumber === PAGES) apiTwentieth.push(elapsed);
      cursor = response.body.nextCursor;
    }
  }

  const rows = [
    { measure: 'first rows visible after sign-in', 'browser ms (median)': median(browserFirst), 'API ms for that page (median)': median(apiFirst) },
    { measure: `${PAGES}th page visible (${(PAGES * PAGE_SIZE).toLocaleString('en-US')} rows)`, 'browser ms (median)': median(browserTwentieth), 'API ms for that page (median)': median(apiTwentieth) },
  ];
  printTable(`Keys page, team of ${KEYS.toLocaleString('en-US')} keys, headless Chromium, ${RUNS} runs`, rows);
  process.stdout.write(`results: ${saveResults('dashboard', { keys: KEYS, browserFirst, browserTwentieth, apiFirst, apiTwentieth })}\n`);
} finally {
  await browser.close();
  await cp.close();
}
