import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import { CONTENT_SECURITY_POLICY, registerDashboard } from '../../control-plane/dashboard/serve-dashboard.js';

const app = Fastify();
await registerDashboard(app);
t.teardown(() => app.close());

const assets = readdirSync(new URL('../../control-plane/dashboard/static/', import.meta.url)).filter((name) => /\.(js|css)$/.test(name));

t.test('every script and style sheet in static/ is served under /assets/ with the page headers', async (t) => {
  t.ok(assets.includes('app.js') && assets.length > 2, 'the entry module and the modules it imports');
  for (const name of assets) {
    const response = await app.inject({ url: `/assets/${name}` });
    t.equal(response.statusCode, 200, name);
    t.match(response.headers['content-type'], name.endsWith('.js') ? /^text\/javascript/ : /^text\/css/, `${name} type`);
    t.equal(response.headers['content-security-policy'], CONTENT_SECURITY_POLICY, `${name} CSP`);
    t.equal(response.headers['x-content-type-options'], 'nosniff', `${name} nosniff`);
    const again = await app.inject({ url: `/assets/${name}`, headers: { 'if-none-match': String(response.headers.etag) } });
    t.equal(again.statusCode, 304, `${name} etag`);
  }
});

t.test('the page is at / and only there', async (t) => {
  t.match((await app.inject({ url: '/' })).headers['content-type'], /^text\/html/);
  t.equal((await app.inject({ url: '/assets/index.html' })).statusCode, 404);
});

t.test("uPlot's module and style sheet are served from 'self', byte for byte the installed package's", async (t) => {
  const packages = createRequire(import.meta.url);
  for (const [asset, file, type] of [
    ['uplot.js', 'uplot/dist/uPlot.esm.js', /^text\/javascript/],
    ['uplot.css', 'uplot/dist/uPlot.min.css', /^text\/css/],
  ] as const) {
    const response = await app.inject({ url: `/assets/${asset}` });
    t.equal(response.statusCode, 200, asset);
    t.match(response.headers['content-type'], type, `${asset} type`);
    t.equal(response.headers['content-security-policy'], CONTENT_SECURITY_POLICY, `${asset} CSP`);
    t.equal(response.body, readFileSync(packages.resolve(file), 'utf8'), `${asset} is the package's file`);
  }
});
