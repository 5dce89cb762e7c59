import t from 'tap';
import type { Test } from 'tap';
import type { Page } from 'playwright-core';
import { SCREENSHOTS, WIDTHS, hasChromium, launchBrowser, layoutProblems, watchProblems } from '../helpers/browser.js';
import { startWorld } from '../helpers/world.js';

/**
 * Every dashboard page and flow at a phone's width and a laptop's, each in a team of its
 * own: nothing may scroll the page sideways, the header and dialogs fit the viewport, and
 * a screenshot of each step is left in test-artifacts/screenshots/ for a reviewer.
 */
if (!hasChromium()) {
  t.test('dashboard pages at two widths', { skip: 'Chromium is not installed (.ci/run installs Debian chromium)' }, () => {});
} else {
  const world = await startWorld({ exitCountries: ['DE'] });
  t.teardown(() => world.close());
  const browser = await launchBrowser();
  t.teardown(() => browser.close());

  for (const width of WIDTHS) {
    t.test(`at ${width} px`, async (t) => {
      const context = await browser.newContext({ viewport: { width, height: width < 600 ? 844 : 800 } });
      t.teardown(() => context.close());
      const page = await context.newPage();
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
