import t from 'tap';
import type { Test } from 'tap';
import type { Page } from 'playwright-core';
import { SCREENSHOTS, WIDTHS, hasChromium, launchBrowser, layoutProblems, watchProblems } from '../helpers/browser.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { deadline, waitFor } from '../helpers/deadline.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const run = promisify(execFile);

/**
 * Every dashboard page and flow at a phone's width and a laptop's, each in a team of its
 * own: nothing may scroll the page sideways, the header and dialogs fit the viewport, and
 * a screenshot of each step is left in test-artifacts/screenshots/ for a reviewer.
 */
if (!hasChromium()) {
  t.test('dashboard pages at two widths', { skip: 'Chromium is not installed (.ci/run installs Debian chromium)' }, () => {});
} else {
  // The node listens on port 0: the control plane asks for the proxy URL only when a page signs in.
  let proxyUrl = '';
  const world = await startWorld({ exitCountries: ['DE'], controlPlane: { publicProxyUrl: () => proxyUrl } });
  const proxyPort = world.node.port;
  proxyUrl = `http://127.0.0.1:${proxyPort}`;
  t.teardown(() => world.close());
  const browser = await launchBrowser();
  t.teardown(() => browser.close());

  for (const width of WIDTHS) {
    t.test(`at ${width} px`, async (t) => {
      const context = await browser.newContext({ viewport: { width, height: width < 600 ? 844 : 800 } });
      t.teardown(() => context.close());
      const page = await context.newPage();
      page.setDefaultTimeout(deadline(10_000));
      const problems = watchProblems(page);
      const team = await world.cp.createTeam(`team at ${width} px`);

      /** The page fits the viewport; its screenshot is kept under `name`. */
      async function fits(t: Test, target: Page, name: string): Promise<void> {
        await target.screenshot({ path: `${SCREENSHOTS}/${width}-${name}.png`, fullPage: true });
        const layout = await layoutProblems(target);
        t.equal(layout.pageOverflow, 0, `${name}: the page does not scroll sideways`);
        t.same(layout.outside, [], `${name}: the header and any dialog fit the viewport`);
      }

      async function signIn(target: Page, token: string): Promise<void> {
        await target.goto(`${world.cp.url}/`);
        await target.getByLabel('Admin or team token').fill(token);
        await target.getByRole('button', { name: 'Sign in' }).click();
        await target.locator('#nav').waitFor();
      }

      await t.test('before sign-in, the nav and Sign out are hidden', async (t) => {
        await page.goto(`${world.cp.url}/`);
        await page.getByLabel('Admin or team token').waitFor();
        t.notOk(await page.locator('#nav').isVisible(), 'no nav');
        t.notOk(await page.getByRole('button', { name: 'Sign out' }).isVisible(), 'no Sign out');
        await fits(t, page, 'sign-in');
      });

      await t.test('a team without keys is told to create its first key; Sign out is on screen', async (t) => {
        await signIn(page, team.token);
        const empty = page.locator('.empty', { hasText: 'No keys yet' });
        await empty.waitFor();
        t.ok(await page.getByRole('button', { name: 'Create your first key' }).isVisible(), 'the action is offered');
        const signOut = page.getByRole('button', { name: 'Sign out' });
        t.ok(await signOut.isVisible(), 'Sign out is shown');
        const box = await signOut.boundingBox();
        t.ok(box !== null && box.x >= 0 && box.x + box.width <= width, 'Sign out is inside the viewport');
        await fits(t, page, 'keys-empty');
      });

      await t.test('usage without traffic says how to get some', async (t) => {
        await page.getByRole('link', { name: 'Usage', exact: true }).click();
        await page.locator('.empty', { hasText: 'No traffic in this period' }).waitFor();
        t.pass('the empty usage state');
        await fits(t, page, 'usage-empty');
      });

      let secret = '';
      await t.test('create a key with limits: its secret is shown once, with snippets for this proxy that work as pasted', async (t) => {
        await page.getByRole('link', { name: 'Keys', exact: true }).click();
        await page.getByRole('button', { name: 'Create your first key' }).click();
        await page.getByLabel('Name', { exact: true }).fill('limited');
        await page.getByLabel('Countries, as ISO codes').fill('de');
        await page.getByLabel('Requests per second').fill('20');
        await page.getByLabel('Connections per node').fill('3');
        await page.getByLabel('Monthly quota (GB)').fill('5');
        // The pasted curl line below comes from 127.0.0.1: these ranges let it through.
        await page.getByLabel(/^Client addresses allowed/).fill('127.0.0.1/8\n::1/128');
        await page.getByRole('checkbox', { name: 'residential' }).check();
        await fits(t, page, 'key-create-dialog');
        await page.getByRole('button', { name: 'Create key' }).click();
        await page.locator('#new-secret').waitFor();
        secret = (await page.locator('#new-secret').textContent()) ?? '';
        t.match(secret, /^sk_live_/);
        t.match(await page.locator('.warning').textContent(), /will not be shown again/);
        const snippets = await page.locator('pre.snippet').allTextContents();
        t.equal(snippets.length, 3, 'curl, Python requests and Playwright');
        for (const snippet of snippets) t.match(snippet, `127.0.0.1:${proxyPort}`, 'each points at this deployment\'s proxy');
        t.match(snippets[0], `curl -x http://user:${secret}@127.0.0.1:${proxyPort} `);
        t.match(snippets[1], `proxy = "http://user:${secret}@127.0.0.1:${proxyPort}"`);
        t.match(snippets[2], `proxy: { server: '${proxyUrl}', username: 'user', password: '${secret}' }`);
        await fits(t, page, 'key-created');
        const [, ...curlArgs] = snippets[0]!.replace('https://example.com/', `${world.origin.url}/from-snippet`).split(' ');
        const { stdout } = await run('curl', [...curlArgs, '-s', '-o', '/dev/null', '-w', '%{http_code}']);
        t.equal(stdout, '200', 'the curl line, pasted, goes through the proxy');
        await page.getByRole('button', { name: 'Done' }).click();
        const stored = await world.cp.request('GET', `/v1/teams/${team.id}/keys?q=limited`, { token: team.token });
        const key = stored.body.data[0];
        t.same(
          { pools: key.pools, countries: key.countries, rateLimit: key.rateLimit, concurrency: key.concurrency, monthlyQuotaBytes: key.monthlyQuotaBytes, allowedClientCidrs: key.allowedClientCidrs },
          {
            pools: ['residential'],
            countries: ['DE'],
            rateLimit: { requestsPerSecond: 20, burst: 20 },
            concurrency: { perNode: 3, perRegion: null },
            monthlyQuotaBytes: 5_000_000_000,
            allowedClientCidrs: ['127.0.0.0/8', '::1/128'],
          },
          'the grants and limits as typed',
        );
      });

      await t.test('the key list shows grants and limits; on a phone its rows are cards', async (t) => {
        const row = page.locator('tbody tr', { hasText: 'limited' });
        await row.waitFor();
        t.match(await row.textContent(), /20 req\/s · 3 per node · .* of 5\.0 GB this month/);
        t.match(await row.locator('.client-cidrs').textContent(), 'clients from 127.0.0.0/8, ::1/128', 'the client ranges, as stored');
        const display = await page.evaluate<string>("getComputedStyle(document.querySelector('tbody tr')).display");
        t.equal(display, width < 600 ? 'block' : 'table-row', width < 600 ? 'a card' : 'a table row');
        await fits(t, page, 'keys-list');
      });

      await t.test("edit a key's grants and limits", async (t) => {
        await page.getByRole('button', { name: 'Edit limited' }).click();
        t.equal(await page.getByLabel('Requests per second').inputValue(), '20', 'the form shows the current limits');
        await page.getByLabel('Requests per second').fill('50');
        await page.getByLabel('Connections per node').fill('');
        await page.getByLabel('Countries, as ISO codes').fill('DE, FR');
        await fits(t, page, 'key-edit-dialog');
        await page.getByRole('button', { name: 'Save changes' }).click();
        const row = page.locator('tbody tr', { hasText: '50 req/s' });
        await row.waitFor();
        t.match(await row.textContent(), /DE, FR/);
        t.notMatch(await row.textContent(), /per node/, 'the cleared cap is gone');
        const stored = (await world.cp.request('GET', `/v1/teams/${team.id}/keys?q=limited`, { token: team.token })).body.data[0];
        t.same(
          { rateLimit: stored.rateLimit, concurrency: stored.concurrency, countries: stored.countries, pools: stored.pools },
          { rateLimit: { requestsPerSecond: 50, burst: 50 }, concurrency: null, countries: ['DE', 'FR'], pools: ['residential'] },
          'what was changed, and the pools left as they were',
        );
      });

      await t.test("a key's client ranges: a bad entry is named next to the field; ranges are set, shown and cleared", async (t) => {
        const ranges = page.getByLabel(/^Client addresses allowed/);
        const stored = async () => (await world.cp.request('GET', `/v1/teams/${team.id}/keys?q=limited`, { token: team.token })).body.data[0].allowedClientCidrs;
        await page.getByRole('button', { name: 'Edit limited' }).click();
        t.equal(await ranges.inputValue(), '127.0.0.0/8\n::1/128', 'the form shows the current ranges, one a line');
        await ranges.fill('203.0.113.7/24\n10.0.0.0/33\n2001:db8:42::/48');
        const logged = problems.length;
        await page.getByRole('button', { name: 'Save changes' }).click();
        const problem = page.locator('#key-client-cidrs-problem .error');
        await problem.waitFor();
        t.match(await problem.textContent(), /"10\.0\.0\.0\/33" is not an IPv4 or IPv6 address .*\(client_cidr_invalid\)/, 'the bad entry is named');
        t.equal(await ranges.getAttribute('aria-invalid'), 'true', 'the field is marked invalid');
        t.equal(await page.locator('dialog form > div[aria-live] .error').count(), 0, 'and the error is not repeated under the form');
        await fits(t, page, 'key-client-ranges-invalid');
        t.same(await stored(), ['127.0.0.0/8', '::1/128'], 'nothing was written');
        // The browser logs every 4xx answer; this one was asked for, so it is no problem to report at the end.
        await waitFor(() => problems.length > logged, { what: 'the browser to log the refused save' });
        t.same(problems.splice(logged), ['Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)'], 'the only console line is the refused save');

        await ranges.fill('203.0.113.7/24\n2001:db8:42::/48');
        await page.getByRole('button', { name: 'Save changes' }).click();
        const row = page.locator('tbody tr', { hasText: 'limited' });
        await row.locator('.client-cidrs', { hasText: '203.0.113.0/24' }).waitFor();
        t.equal(await row.locator('.client-cidrs').textContent(), 'clients from 203.0.113.0/24, 2001:db8:42::/48', 'the row shows the ranges, canonical');
        t.same(await stored(), ['203.0.113.0/24', '2001:db8:42::/48'], 'stored as set');
        await fits(t, page, 'keys-list-client-ranges');

        await page.getByRole('button', { name: 'Edit limited' }).click();
        await ranges.fill('');
        await page.getByRole('button', { name: 'Save changes' }).click();
        await page.locator('dialog').waitFor({ state: 'detached' });
        await waitFor(async () => (await row.locator('.client-cidrs').count()) === 0, { what: 'the ranges to leave the row' });
        t.same(await stored(), [], 'cleared: any address may use the key again');
      });

      await t.test('rotate a key: the new secret is shown once and the old one stops working', async (t) => {
        await page.getByRole('button', { name: 'Rotate limited' }).click();
        await fits(t, page, 'key-rotate-confirm');
        await page.getByRole('button', { name: 'Rotate key' }).click();
        await page.locator('#new-secret').waitFor();
        const rotated = (await page.locator('#new-secret').textContent()) ?? '';
        t.match(rotated, /^sk_live_/);
        t.not(rotated, secret, 'a new secret');
        t.match((await page.locator('pre.snippet').allTextContents())[0], rotated, 'the snippets carry the new secret');
        await fits(t, page, 'key-rotated');
        await page.getByRole('button', { name: 'Done' }).click();
        await waitFor(async () => (await proxyRequest(proxyPort, `${world.origin.url}/`, bearer(secret))).status === 407, { what: 'the old secret to be refused' });
        t.equal((await proxyRequest(proxyPort, `${world.origin.url}/`, bearer(rotated))).status, 200, 'the new one works');
      });

      await t.test('usage is charted with axes, time labels and a legend, inside the page', async (t) => {
        await world.node.flushUsage();
        await waitFor(async () => (await world.cp.request('GET', `/v1/teams/${team.id}/usage`, { token: team.token })).body.data.length > 0, {
          what: 'the pasted curl request to be metered',
        });
        await page.getByRole('link', { name: 'Usage', exact: true }).click();
        await page.locator('.chart .uplot canvas').waitFor();
        const legend = await page.locator('.chart .u-legend .u-series .u-label').allTextContents();
        t.same(legend, ['Hour', 'Downloaded', 'Uploaded', 'Requests'], 'a legend naming the time and each series');
        const axes = await page.locator('.chart .u-axis').count();
        t.equal(axes, 3, 'time along the bottom, bytes on the left, requests on the right');
        const box = await page.locator('.chart .uplot').boundingBox();
        t.ok(box !== null && box.x >= 0 && box.x + box.width <= width, `the chart (${box?.width} px wide) fits the viewport`);
        t.match(await page.locator('#usage-summary').textContent(), /[1-9][\d,]* requests?/);
        await fits(t, page, 'usage');
      });

      await t.test("a key's own usage page", async (t) => {
        await page.getByRole('link', { name: 'Keys', exact: true }).click();
        await page.getByRole('link', { name: 'Usage of limited' }).click();
        await page.getByRole('heading', { name: 'Usage · limited' }).waitFor();
        await page.locator('.chart .uplot canvas, .empty').first().waitFor();
        t.pass('a chart, or what to do to get one');
        await fits(t, page, 'key-usage');
      });

      await t.test('revoke a key: the propagation panel fits and reaches every node', async (t) => {
        await world.cp.request('POST', `/v1/teams/${team.id}/keys`, { token: team.token, body: { name: 'to-revoke' } });
        await page.getByRole('link', { name: 'Keys', exact: true }).click();
        await page.getByRole('button', { name: 'Revoke to-revoke' }).click();
        await fits(t, page, 'key-revoke-confirm');
        await page.getByRole('button', { name: 'Revoke key' }).click();
        await page.locator('#propagation-summary.done').waitFor();
        t.match(await page.locator('#propagation-summary').textContent(), /^Revoked everywhere: 1 node/);
        await fits(t, page, 'key-revocation-propagation');
        await page.getByRole('button', { name: 'Close' }).click();
        await page.locator('tbody tr', { hasText: 'to-revoke' }).locator('.status', { hasText: 'revoked' }).waitFor();
      });

      await t.test('the activity page lists what was done, each revocation linked to its propagation', async (t) => {
        await page.getByRole('link', { name: 'Activity', exact: true }).click();
        for (const action of ['key.created', 'key.updated', 'key.rotated', 'key.revoked']) {
          await page.locator(`tr[data-action="${action}"]`).first().waitFor();
        }
        t.pass('creation, change, rotation and revocation are listed');
        t.equal(await page.locator('tr[data-action="key.revoked"]').getByRole('link', { name: 'Propagation status' }).count(), 1);
        await fits(t, page, 'activity');
      });

      await t.test('team tokens: list, create with chosen scopes (secret shown once), revoke', async (t) => {
        t.notOk(await page.getByRole('link', { name: 'Teams', exact: true }).isVisible(), 'a team token has no Teams page');
        await page.getByRole('link', { name: 'Tokens', exact: true }).click();
        await page.locator('tbody tr', { hasText: '(you)' }).waitFor();
        t.pass('the signed-in token is listed and marked');
        await page.getByRole('button', { name: 'Create token' }).click();
        await page.getByLabel('Name', { exact: true }).fill('nightly-export');
        await page.getByRole('checkbox', { name: /keys:write/ }).uncheck();
        await page.getByRole('checkbox', { name: /tokens:write/ }).uncheck();
        await fits(t, page, 'token-create-dialog');
        await page.getByRole('button', { name: 'Create token' }).last().click();
        await page.locator('#new-secret').waitFor();
        const token = (await page.locator('#new-secret').textContent()) ?? '';
        t.match(await page.locator('.warning').textContent(), /Copy this token now\. It will not be shown again\./);
        await fits(t, page, 'token-created');
        const me = await world.cp.request('GET', '/v1/me', { token });
        t.same(me.body.scopes, ['keys:read', 'usage:read', 'activity:read'], 'the new token has exactly the scopes left checked');
        await page.getByRole('button', { name: 'Done' }).click();
        const row = page.locator('tbody tr', { hasText: 'nightly-export' });
        await row.waitFor();
        t.notMatch(await row.textContent(), /keys:write/);
        await fits(t, page, 'tokens');
        await row.getByRole('button', { name: 'Revoke token nightly-export' }).click();
        await fits(t, page, 'token-revoke-confirm');
        await page.getByRole('button', { name: 'Revoke token', exact: true }).click();
        await row.locator('.status', { hasText: 'revoked' }).waitFor();
        t.equal((await world.cp.request('GET', '/v1/me', { token })).body.error.code, 'token_revoked', 'refused on its next call');
      });

      await t.test('a read-only team token is offered no action its scopes forbid: no key changes, no tokens', async (t) => {
        const readScopes = ['keys:read', 'usage:read', 'activity:read'];
        const created = await world.cp.request('POST', `/v1/teams/${team.id}/tokens`, { token: team.token, body: { name: 'reader', scopes: readScopes } });
        const reader: string = created.body.token;
        t.same((await world.cp.request('GET', '/v1/me', { token: reader })).body.scopes, readScopes, '/v1/me gives the token its scopes');
        const readOnly = await context.newPage();
        readOnly.setDefaultTimeout(deadline(10_000));
        const readOnlyProblems = watchProblems(readOnly);
        await signIn(readOnly, reader);
        const active = readOnly.locator('tbody tr', { hasText: 'limited' });
        await active.waitFor();
        t.equal(await readOnly.locator('#create-key').count(), 0, 'no Create new key');
        t.equal(await readOnly.getByRole('button', { name: /^(Edit|Rotate|Revoke) / }).count(), 0, 'no Edit, Rotate or Revoke on any key');
        t.ok(await active.getByRole('link', { name: 'Usage of limited' }).isVisible(), 'what it may read is still offered: usage');
        t.ok(await active.getByRole('button', { name: 'Test a proxy username for limited' }).isVisible(), 'and the username test');
        const revoked = readOnly.locator('tbody tr', { hasText: 'to-revoke' });
        t.ok(await revoked.getByRole('button', { name: 'Propagation' }).isVisible(), "and a revoked key's propagation");
        await fits(t, readOnly, 'keys-read-only');
        t.notOk(await readOnly.getByRole('link', { name: 'Tokens', exact: true }).isVisible(), 'no Tokens page without tokens:write');
        await readOnly.goto(`${world.cp.url}/#/tokens`);
        await readOnly.getByRole('heading', { name: `Keys · team at ${width} px` }).waitFor();
        await active.waitFor();
        t.equal(await readOnly.getByRole('button', { name: /Create .*token/ }).count(), 0, 'asked for by address, the tokens page gives way to the keys');

        const readers = await world.cp.createTeam(`readers at ${width} px`);
        const empty = await world.cp.request('POST', `/v1/teams/${readers.id}/tokens`, { token: readers.token, body: { name: 'reader', scopes: ['keys:read'] } });
        await readOnly.getByRole('button', { name: 'Sign out' }).click();
        await signIn(readOnly, empty.body.token);
        const emptyState = readOnly.locator('.empty', { hasText: 'No keys yet' });
        await emptyState.waitFor();
        t.match(await emptyState.textContent(), /ask your admin for a token with keys:write/, 'the empty state says who can help');
        t.equal(await readOnly.getByRole('button', { name: /Create/ }).count(), 0, 'and offers no Create your first key');
        await fits(t, readOnly, 'keys-empty-read-only');
        t.same(readOnlyProblems, [], 'no console errors: nothing the API would refuse was tried');
        await readOnly.close();
      });

      await t.test('the platform admin lists teams, creates one, and switches between teams without signing out', async (t) => {
        const admin = await context.newPage();
        admin.setDefaultTimeout(deadline(10_000));
        const adminProblems = watchProblems(admin);
        await signIn(admin, world.cp.adminToken);
        await admin.getByRole('heading', { name: 'Choose a team' }).waitFor();
        t.ok(await admin.getByRole('link', { name: 'Teams', exact: true }).isVisible(), 'the admin has a Teams page');
        await admin.getByLabel('New team name').fill(`new team at ${width} px`);
        await admin.getByRole('button', { name: 'Create team' }).click();
        await admin.locator('tbody tr', { hasText: `new team at ${width} px` }).waitFor();
        await fits(t, admin, 'teams');
        await admin.getByRole('button', { name: `Switch to team at ${width} px` }).click();
        await admin.getByRole('heading', { name: `Keys · team at ${width} px` }).waitFor();
        t.match(await admin.locator('#who').textContent(), `Platform admin · team at ${width} px`);
        await admin.getByRole('link', { name: 'Teams', exact: true }).click();
        await admin.locator('tbody tr', { hasText: 'Current team' }).filter({ hasText: `team at ${width} px` }).first().waitFor();
        await admin.getByRole('button', { name: `Switch to new team at ${width} px` }).click();
        await admin.getByRole('heading', { name: `Keys · new team at ${width} px` }).waitFor();
        await admin.locator('.empty', { hasText: 'No keys yet' }).waitFor();
        const [brand, signOut, nav] = await Promise.all(['.brand', '#sign-out', '#nav'].map((selector) => admin.locator(selector).boundingBox()));
        t.ok(brand && signOut && nav && signOut.y < brand.y + brand.height && signOut.x + signOut.width <= width, 'a long team name does not push Sign out off the first row');
        t.ok(nav && signOut && (width < 600 ? nav.y >= signOut.y + signOut.height : true), 'on a phone the nav has a row of its own');
        t.notOk(await admin.getByLabel('Admin or team token').isVisible(), 'still signed in');
        await admin.getByRole('link', { name: 'Pools', exact: true }).click();
        await admin.locator('tbody tr', { hasText: 'residential' }).waitFor();
        await fits(t, admin, 'pools');
        t.same(adminProblems, []);
        await admin.close();
      });

      await t.test('signing out hides the nav again', async (t) => {
        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.getByLabel('Admin or team token').waitFor();
        t.notOk(await page.locator('#nav').isVisible());
      });

      await t.test('no console errors and no CSP violations', async (t) => {
        t.same(problems, []);
      });
    });
  }
}
