import t from 'tap';
import type { Page } from 'playwright-core';
import { ARTIFACTS, hasChromium, launchBrowser, watchProblems } from '../helpers/browser.js';
import { deadline, waitFor } from '../helpers/deadline.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { seedKeys } from '../helpers/seed-keys.js';
import { startWorld } from '../helpers/world.js';

if (!hasChromium()) {
  t.test('dashboard in a real browser', { skip: 'Chromium is not installed (.ci/run installs Debian chromium)' }, () => {});
} else {
  const world = await startWorld({ exitCountries: ['DE'] });
  t.teardown(() => world.close());
  await seedKeys(world.cp.adminDb, { teamId: world.team.id, count: 15_000 });
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
  const problems = watchProblems(page);

  async function signIn(target: Page, token: string): Promise<number> {
    await target.goto(`${world.cp.url}/`);
    await target.getByLabel('Admin or team token').fill(token);
    const started = Date.now();
    await target.getByRole('button', { name: 'Sign in' }).click();
    await target.locator('tbody tr').first().waitFor();
    return Date.now() - started;
  }

  t.test('signing in shows the first page of a 15,000-key team within a second', async (t) => {
    const elapsed = await signIn(page, world.team.token);
    t.ok(elapsed <= deadline(1_000), `first rows after ${elapsed} ms`);
    t.equal(await page.locator('tbody tr').count(), 100);
    t.equal(await page.locator('#total').textContent(), '10,000+ keys', 'the capped total as the API gives it');
    await page.screenshot({ path: `${ARTIFACTS}/keys-page.png` });
  });

  t.test('scrolling loads the next page', async (t) => {
    await page.locator('.more').scrollIntoViewIfNeeded();
    await page.locator('tbody tr').nth(199).waitFor();
    t.ok((await page.locator('tbody tr').count()) >= 200);
  });

  t.test('the button reads exactly "Create new key"', async (t) => {
    t.equal(await page.locator('#create-key').textContent(), 'Create new key');
  });

  let secret = '';
  t.test('create a key, read its secret once, and use it through a proxy node', async (t) => {
    await page.locator('#create-key').click();
    await page.getByLabel('Name', { exact: true }).fill('browser-made');
    await page.getByLabel('Countries, as ISO codes').fill('de');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('#new-secret').waitFor();
    t.match(await page.locator('.warning').textContent(), /will not be shown again/);
    secret = (await page.locator('#new-secret').textContent()) ?? '';
    t.match(secret, /^sk_live_[A-Za-z0-9]{38}$/);
    await page.screenshot({ path: `${ARTIFACTS}/secret-shown.png` });
    await page.getByRole('button', { name: 'Done' }).click();
    const response = await proxyRequest(world.node.port, `${world.origin.url}/from-dashboard`, bearer(secret));
    t.equal(response.status, 200, 'the new key works through the proxy');
  });

  t.test('revoke it: the row turns revoked and the propagation panel reaches "revoked everywhere"', async (t) => {
    await page.getByLabel('Search by name or key prefix').fill('browser-made');
    const row = page.locator('tbody tr', { hasText: 'browser-made' });
    await waitFor(async () => (await page.locator('tbody tr').count()) === 1, { what: 'the search to narrow the list' });
    t.equal(await row.count(), 1, 'search narrows the list to the key');
    await row.getByRole('button', { name: 'Revoke browser-made' }).click();
    await page.getByRole('button', { name: 'Revoke key' }).click();
    await row.locator('.status', { hasText: 'revoked' }).waitFor({ timeout: deadline(2_000) });
    t.pass('the row turns revoked at once');
    await page.locator('#propagation-summary.done').waitFor();
    t.match(await page.locator('#propagation-summary').textContent(), /^Revoked everywhere: 1 node, slowest after \d+ ms\.$/);
    await page.screenshot({ path: `${ARTIFACTS}/propagation.png` });
    await page.getByRole('button', { name: 'Close' }).click();
    const refused = await proxyRequest(world.node.port, `${world.origin.url}/`, bearer(secret));
    t.equal(refused.headers['x-portcullis-error'], 'key_revoked');
  });

  t.test('the activity page shows the revocation, linked to its propagation', async (t) => {
    await page.getByRole('link', { name: 'Activity' }).click();
    const entry = page.locator('tr[data-action="key.revoked"]').first();
    await entry.waitFor();
    t.match(await entry.textContent(), /browser-made/);
    await entry.getByRole('link', { name: 'Propagation status' }).click();
    await page.locator('#propagation-summary.done').waitFor();
    t.pass('the link opens the propagation status');
    await page.screenshot({ path: `${ARTIFACTS}/activity.png` });
    await page.getByRole('button', { name: 'Close' }).click();
  });

  t.test('the usage page charts the traffic the proxy metered', async (t) => {
    await world.node.flushUsage();
    await waitFor(async () => {
      const usage = await world.cp.request('GET', `/v1/teams/${world.team.id}/usage`, { token: world.team.token });
      return usage.body.data.length > 0;
    }, { what: 'the metered request to reach the control plane' });
    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    await page.locator('#usage-summary', { hasText: 'downloaded' }).waitFor();
    t.match(await page.locator('#usage-summary').textContent(), /downloaded, .* uploaded, [1-9][\d,]* requests?, /);
    await page.locator('.chart .uplot canvas').waitFor();
    t.same(await page.locator('.chart .u-legend .u-series .u-label').allTextContents(), ['Hour', 'Downloaded', 'Uploaded', 'Requests'], 'a uPlot chart with its legend');
    await page.screenshot({ path: `${ARTIFACTS}/usage.png` });
  });

  t.test('a key name full of markup renders as text', async (t) => {
    const hostile = `<img src=x onerror="alert(1)"><script>alert(2)</script> "quoted" 'single' 🚀 ${'x'.repeat(120)}`;
    await world.createKey({ name: hostile });
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByLabel('Search by name or key prefix').fill('<img');
    const cell = page.locator('tbody tr td.name').first();
    await cell.waitFor();
    t.equal(await cell.textContent(), hostile, 'the exact text');
    t.equal(await page.locator('tbody img, tbody script').count(), 0, 'no element was created from it');
    await page.screenshot({ path: `${ARTIFACTS}/hostile-name.png` });
  });

  t.test('a wrong token gets a readable message, not a blank page', async (t) => {
    const other = await browser.newPage();
    await other.goto(`${world.cp.url}/`);
    await other.getByLabel('Admin or team token').fill('pc_tok_wrong');
    await other.getByRole('button', { name: 'Sign in' }).click();
    await other.getByRole('alert').waitFor();
    t.match(await other.getByRole('alert').textContent(), /not accepted/);
    await other.close();
  });

  t.test('the platform admin picks a team and sees the pools page', async (t) => {
    const admin = await browser.newPage();
    await admin.goto(`${world.cp.url}/`);
    await admin.getByLabel('Admin or team token').fill(world.cp.adminToken);
    await admin.getByRole('button', { name: 'Sign in' }).click();
    await admin.getByRole('button', { name: world.team.name, exact: true }).click();
    await admin.locator('tbody tr').first().waitFor();
    await admin.getByRole('link', { name: 'Pools' }).click();
    const pool = admin.locator('tbody tr', { hasText: 'residential' });
    await pool.waitFor();
    t.match(await pool.textContent(), /DE/);
    await admin.screenshot({ path: `${ARTIFACTS}/pools.png` });
    await admin.close();
  });

  t.test('no console errors and no CSP violations along the way', async (t) => {
    t.same(problems, []);
  });
}
