import t from 'tap';
import { hasChromium, launchBrowser, watchProblems } from '../helpers/browser.js';
import { startWorld } from '../helpers/world.js';

if (!hasChromium()) {
  t.test('the explain form in a real browser', { skip: 'Chromium is not installed (.ci/run installs Debian chromium)' }, () => {});
} else {
  const world = await startWorld({ exitCountries: ['DE'] });
  t.teardown(() => world.close());
  await world.createKey({ name: 'tested', countries: ['DE', 'US'] } as Record<string, unknown>);
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
  const problems = watchProblems(page);

  t.test("the key page's form tells what a node would do with a proxy username", async (t) => {
    await page.goto(`${world.cp.url}/`);
    await page.getByLabel('Admin or team token').fill(world.team.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Test a proxy username for tested' }).click();

    await page.getByLabel('Proxy username', { exact: true }).fill('acme-country-us');
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    await page.locator('#explain-verdict').waitFor();
    t.match(await page.locator('#explain-verdict').textContent(), /refuse it: 503 no_exit — No exit for country US/);

    await page.getByLabel('Proxy username', { exact: true }).fill('acme-country-fr');
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    await page.locator('#explain-verdict', { hasText: 'country_forbidden' }).waitFor();

    await page.getByLabel('Proxy username', { exact: true }).fill('acme-country-de-session-s1');
    await page.getByLabel('Destination (optional)').fill('https://example.com');
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    await page.locator('#explain-verdict', { hasText: 'would send' }).waitFor();
    t.match(await page.locator('#explain-result').textContent(), /Targeting: country DE, session s1.*Matching exits: 1 \(DE\)/);
    t.same(problems, [], 'no console errors and no CSP violations');
  });
}
