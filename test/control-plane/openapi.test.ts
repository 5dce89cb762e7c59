import t from 'tap';
import { readFileSync } from 'node:fs';
import { CONTENT_SECURITY_POLICY } from '../../control-plane/dashboard/serve-dashboard.js';
import { ERRORS } from '../../control-plane/errors.js';
import { ARTIFACTS, hasChromium, launchBrowser, watchProblems } from '../helpers/browser.js';
import { startTestControlPlane, type ApiResponse } from '../helpers/control-plane.js';
import { createAjv, documentedErrors, matchOperation, type OpenApiDocument } from '../helpers/openapi.js';

const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const document: OpenApiDocument = (await cp.request('GET', '/openapi.json', { token: null })).body;
const operations = Object.entries(document.paths).flatMap(([template, methods]) => Object.entries(methods).map(([method, operation]) => ({ template, method, operation })));
const bodies = createAjv({ coerce: false });
const text = createAjv({ coerce: true });

/** Pages and assets of the dashboard and this document itself: not API, left out on purpose. */
const NOT_API = /^\/(|reference|openapi\.json|assets\/.*)$/;
const toTemplate = (url: string) => url.replace(/:(\w+)/g, '{$1}');

t.test('the document is OpenAPI 3.1 and has every route the control plane serves, and only those', async (t) => {
  t.equal(document.openapi, '3.1.0');
  const served = cp.routes.filter((route) => !NOT_API.test(route.url)).map((route) => `${route.method.toLowerCase()} ${toTemplate(route.url)}`);
  const documented = operations.map(({ method, template }) => `${method} ${template}`);
  t.same(new Set(documented), new Set(served));
  t.ok(served.length > 30, `${served.length} routes`);
  t.ok(
    cp.routes.filter((route) => NOT_API.test(route.url)).every((route) => route.method === 'GET'),
    'what is left out only serves pages',
  );
});

t.test('every operation documents the errors every call of its kind can answer with', async (t) => {
  for (const { template, method, operation } of operations) {
    const name = `${method.toUpperCase()} ${template}`;
    const errors = documentedErrors(operation);
    for (const [status, codes] of errors) t.ok(codes.every((code) => ERRORS[code as keyof typeof ERRORS]?.status === status), `${name}: ${status} lists codes of that status`);
    t.ok(errors.get(500)?.includes('internal'), `${name}: 500 internal`);
    if (template.startsWith('/v1/')) {
      t.same(errors.get(401), ['token_expired', 'token_invalid', 'token_missing', 'token_revoked'], `${name}: 401 token codes`);
      // Lists, searches and exports (GET routes answering pages or CSV) also answer `busy`.
      const heavy = method === 'get' && ((operation.parameters ?? []).some((parameter) => parameter.name === 'cursor') || template.endsWith('.csv') || template.endsWith('/usage'));
      t.same(errors.get(503), [...(heavy ? ['busy'] : []), 'database_busy', 'database_timeout', 'database_unavailable'], `${name}: 503 database codes${heavy ? ' and busy' : ''}`);
      const roles = operation.security?.[0]?.token ?? [];
      if (roles.length > 0) t.ok(errors.get(403)?.includes('scope_missing'), `${name}: 403 scope_missing for ${roles.join()}`);
    }
    if (template.startsWith('/internal/')) t.same(errors.get(401), ['node_token_invalid'], `${name}: the node token`);
    if (operation.requestBody !== undefined) {
      for (const code of ['invalid_json', 'unknown_field', 'missing_field', 'invalid_field']) t.ok(errors.get(400)?.includes(code), `${name}: 400 ${code}`);
      t.ok(errors.get(413)?.includes('body_too_large') && errors.get(415)?.includes('unsupported_media_type'), `${name}: 413 and 415`);
    }
  }
});

t.test('every code in the error table is documented on some operation', async (t) => {
  const documented = new Set(operations.flatMap(({ operation }) => [...documentedErrors(operation).values()].flat()));
  // Unknown paths have no operation; the document's description says what they answer.
  t.same(
    Object.keys(ERRORS).filter((code) => !documented.has(code)),
    ['route_not_found'],
  );
});

// Everything the control plane answers below is checked against the document.
const answered: string[] = [];
async function call(method: string, path: string, options: Parameters<typeof cp.request>[2] = {}): Promise<ApiResponse> {
  const response = await cp.request(method, path, options);
  const matched = matchOperation(document, method, path.split('?')[0]!);
  if (matched === undefined) throw new Error(`${method} ${path} has no operation`);
  const documented = matched.operation.responses[String(response.status)];
  if (documented === undefined) throw new Error(`${method} ${matched.template} answered ${response.status}, which it does not document: ${JSON.stringify(response.body)}`);
  const schema = documented.content?.['application/json']?.schema;
  if (schema !== undefined && !bodies.validate(schema, response.body)) {
    throw new Error(`${method} ${matched.template} ${response.status}: ${bodies.errorsText()} in ${JSON.stringify(response.body).slice(0, 500)}`);
  }
  answered.push(`${method} ${matched.template} ${response.status}${response.body?.error ? ` ${response.body.error.code}` : ''}`);
  return response;
}

t.test('real answers, successes and errors, match the operations that documented them', async (t) => {
  const team = await cp.createTeam();
  const base = `/v1/teams/${team.id}`;
  const reader = (await call('POST', `${base}/tokens`, { token: team.token, body: { name: 'reader', scopes: ['keys:read'] } })).body;
  const victim = (await call('POST', `${base}/tokens`, { token: team.token, body: { name: 'victim' } })).body;
  const rotating = (await call('POST', `${base}/tokens`, { token: team.token, body: { name: 'rotating' } })).body;
  const key = (await call('POST', `${base}/keys`, { token: team.token, body: { name: 'documented', countries: ['DE'], rateLimit: { requestsPerSecond: 5 }, monthlyQuotaBytes: 1_000 } })).body;
  const revoked = (await call('POST', `${base}/keys`, { token: team.token, body: { name: 'revoked' } })).body;
  const untouched = (await call('POST', `${base}/keys`, { token: team.token, body: { name: 'untouched' } })).body;
  const pool = { name: 'documented', exits: [{ country: 'DE', url: 'direct' }] };
  const successes: [string, string, Parameters<typeof cp.request>[2]?][] = [
    ['GET', '/v1/me', { token: team.token }],
    ['GET', '/v1/me'],
    ['GET', '/v1/teams'],
    ['POST', '/v1/teams', { body: { name: 'documented' } }],
    ['GET', base, { token: team.token }],
    ['PATCH', base, { body: { monthlyQuotaBytes: 10_000_000 } }],
    ['GET', `${base}/tokens`, { token: team.token }],
    ['GET', `${base}/tokens/${reader.id}`, { token: team.token }],
    ['POST', `${base}/tokens/${victim.id}/revoke`, { token: team.token }],
    ['POST', '/v1/me/rotate', { token: rotating.token }],
    ['POST', `${base}/keys/bulk`, { token: team.token, body: { keys: [{ name: 'bulk-a' }, { name: 'bulk-b', pools: [] }] } }],
    ['GET', `${base}/keys`, { token: team.token }],
    ['GET', `${base}/keys/${key.id}`, { token: team.token }],
    ['PATCH', `${base}/keys/${key.id}`, { token: team.token, body: { name: 'renamed', concurrency: { perNode: 2 } } }],
    ['POST', `${base}/keys/${revoked.id}/revoke`, { token: team.token }],
    ['GET', `${base}/keys/${revoked.id}/revocation`, { token: team.token }],
    ['POST', `${base}/keys/${key.id}/rotate`, { token: team.token }],
    ['GET', `${base}/keys.csv`, { token: team.token }],
    ['GET', `${base}/activity`, { token: team.token }],
    ['GET', '/v1/activity'],
    ['GET', `${base}/usage`, { token: team.token }],
    ['GET', `${base}/keys/${key.id}/usage?granularity=day`, { token: team.token }],
    ['GET', `${base}/usage.csv`, { token: team.token }],
    ['POST', '/v1/pools', { body: pool }],
    ['PATCH', `/v1/pools/${pool.name}`, { body: { exits: pool.exits } }],
    ['GET', '/v1/pools'],
    ['GET', '/v1/pools', { token: team.token }],
    ['GET', `/v1/pools/${pool.name}`, { token: team.token }],
    ['POST', '/internal/v1/keys/verify', { token: cp.nodeToken, body: { hashes: ['ab'.repeat(32)] } }],
    ['GET', '/internal/v1/revocations?after=0', { token: cp.nodeToken }],
    ['POST', '/internal/v1/usage', { token: cp.nodeToken, body: { nodeId: 'doc-node', batch: 1, entries: [] } }],
    ['GET', '/internal/v1/pools', { token: cp.nodeToken }],
    ['GET', '/healthz', { token: null }],
    ['GET', '/readyz', { token: null }],
    ['GET', '/metrics', { token: null }],
  ];
  for (const [method, path, options] of successes) {
    const response = await call(method, path, options);
    t.ok(response.status < 300, `${method} ${path} → ${response.status}`);
  }
  const errors: [string, string, Parameters<typeof cp.request>[2], string][] = [
    ['GET', '/v1/me', { token: null }, 'token_missing'],
    ['GET', '/v1/me', { token: victim.token }, 'token_revoked'],
    ['POST', '/v1/me/rotate', {}, 'admin_token_configured'],
    ['POST', '/v1/teams', { body: { name: 'documented' } }, 'team_name_taken'],
    ['GET', '/v1/teams', { token: team.token }, 'admin_required'],
    ['GET', '/v1/teams/team_nope', {}, 'team_not_found'],
    ['PATCH', base, { body: { monthlyQuotaBytes: 0 } }, 'invalid_field'],
    ['POST', `${base}/tokens`, { token: reader.token, body: { name: 'x' } }, 'scope_missing'],
    ['POST', `${base}/tokens`, { token: team.token, body: { name: 'x', expiresAt: '2001-01-01T00:00:00Z' } }, 'expires_at_in_past'],
    ['GET', `${base}/tokens?cursor=forged`, { token: team.token }, 'cursor_invalid'],
    ['GET', `${base}/tokens/tok_nope`, { token: team.token }, 'token_not_found'],
    ['POST', `${base}/tokens/tok_nope/revoke`, { token: team.token }, 'token_not_found'],
    ['POST', `${base}/keys`, { token: team.token, body: { name: 'x', pools: ['nope'] } }, 'pool_unknown'],
    ['POST', `${base}/keys`, { token: team.token, body: {} }, 'missing_field'],
    ['POST', `${base}/keys`, { token: team.token, rawBody: '{' }, 'invalid_json'],
    ['POST', `${base}/keys`, { token: team.token, rawBody: 'name', headers: { 'content-type': 'text/csv' } }, 'unsupported_media_type'],
    ['POST', `${base}/keys`, { token: team.token, body: { name: 'x'.repeat(70_000) } }, 'body_too_large'],
    ['POST', `${base}/keys/bulk`, { token: team.token, body: { keys: [{ name: 'x', countries: ['XX'] }] } }, 'country_unknown'],
    ['GET', `${base}/keys?limit=0`, { token: team.token }, 'invalid_field'],
    ['GET', `${base}/keys?sort=name`, { token: team.token }, 'unknown_field'],
    ['GET', `${base}/keys.csv?status=gone`, { token: team.token }, 'invalid_field'],
    ['GET', `${base}/keys/key_nope`, { token: team.token }, 'key_not_found'],
    ['PATCH', `${base}/keys/${revoked.id}`, { token: team.token, body: { name: 'y' } }, 'key_revoked'],
    ['POST', `${base}/keys/key_nope/revoke`, { token: team.token }, 'key_not_found'],
    ['POST', `${base}/keys/${revoked.id}/rotate`, { token: team.token }, 'key_revoked'],
    ['GET', `${base}/keys/${untouched.id}/revocation`, { token: team.token }, 'revocation_not_found'],
    ['GET', `${base}/activity`, { token: reader.token }, 'scope_missing'],
    ['GET', '/v1/activity', { token: team.token }, 'admin_required'],
    ['GET', `${base}/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`, { token: team.token }, 'range_invalid'],
    ['GET', `${base}/keys/${key.id}/usage?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z`, { token: team.token }, 'range_too_long'],
    ['GET', `${base}/usage.csv?granularity=week`, { token: team.token }, 'invalid_field'],
    ['GET', '/v1/pools?limit=many', {}, 'invalid_field'],
    ['POST', '/v1/pools', { body: pool }, 'pool_name_taken'],
    ['GET', '/v1/pools/nope', {}, 'pool_not_found'],
    ['PATCH', `/v1/pools/${pool.name}`, { body: { exits: [{ country: 'DE', url: 'ftp://exit' }] } }, 'exit_url_invalid'],
    ['POST', '/internal/v1/keys/verify', { body: { hashes: [] } }, 'node_token_invalid'],
    ['GET', '/internal/v1/revocations?after=-1', { token: cp.nodeToken }, 'invalid_field'],
    ['POST', '/internal/v1/nodes/report', { token: cp.nodeToken, body: {} }, 'missing_field'],
    ['POST', '/internal/v1/usage', { token: cp.nodeToken, body: { nodeId: 'n' } }, 'missing_field'],
    ['GET', '/internal/v1/pools', { token: null }, 'node_token_invalid'],
  ];
  for (const [method, path, options, code] of errors) {
    const response = await call(method, path, options);
    t.equal(response.body?.error?.code, code, `${method} ${path} → ${code}`);
  }
  const covered = new Set(answered.map((line) => line.split(' ').slice(0, 2).join(' ')));
  t.same(
    operations.map(({ method, template }) => `${method.toUpperCase()} ${template}`).filter((operation) => !covered.has(operation)),
    [],
    'every operation was called',
  );
});

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The README's curl commands for the API: continued lines and bodies quoted over several lines joined. */
function readmeCurls(): string[] {
  const commands: string[] = [];
  for (const [, block] of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let command: string | undefined;
    for (const line of block!.split('\n')) {
      if (command === undefined && !line.startsWith('curl')) continue;
      command = command === undefined ? line : `${command}\n${line}`;
      const open = command.endsWith('\\') || (command.match(/'/g) ?? []).length % 2 === 1;
      if (open) continue;
      commands.push(command.replace(/\\\n\s*/g, ' '));
      command = undefined;
    }
  }
  return commands.filter((command) => command.includes('127.0.0.1:8080'));
}

t.test('every curl example in the README is a documented call with a valid body and query', async (t) => {
  const curls = readmeCurls();
  t.ok(curls.length >= 10, `${curls.length} examples`);
  for (const line of curls) {
    const url = /["\s](http:\/\/127\.0\.0\.1:8080(\/[^"\s]*))/.exec(line)![2]!;
    const body = /-d '([^']*)'/.exec(line)?.[1];
    const method = /-X (\w+)/.exec(line)?.[1] ?? (body === undefined ? 'GET' : 'POST');
    const [path, query = ''] = url.split('?');
    const matched = matchOperation(document, method, path!);
    if (matched === undefined) {
      t.fail(`${method} ${path} is not in the document`);
      continue;
    }
    const name = `${method} ${matched.template}`;
    if (body !== undefined) {
      const schema = matched.operation.requestBody?.content['application/json']?.schema;
      t.ok(schema, `${name} takes a body`);
      t.ok(bodies.validate(schema!, JSON.parse(body)), `${name}: ${body} ${bodies.errorsText()}`);
    }
    for (const [parameter, value] of new URLSearchParams(query)) {
      const documented = matched.operation.parameters?.find((candidate) => candidate.in === 'query' && candidate.name === parameter);
      t.ok(documented, `${name} takes ?${parameter}`);
      t.ok(documented !== undefined && text.validate(documented.schema, value), `${name}: ${parameter}=${value} ${text.errorsText()}`);
    }
  }
});

/** The README's call table: each operation in the first column, its query names and body fields. */
function readmeCallTable(): { method: string; template: string; query: string[]; fields?: string[] }[] {
  const section = readme.slice(readme.indexOf('\n## Admin API\n'), readme.indexOf('\n### API errors\n'));
  const rows = section.split('\n').filter((line) => line.startsWith('| `'));
  const calls: { method: string; template: string; query: string[]; fields?: string[] }[] = [];
  for (const row of rows) {
    const cell = row.split(' | ')[0]!;
    for (const [, span] of cell.matchAll(/`([^`]+)`/g)) {
      const call = /^(GET|POST|PATCH|PUT|DELETE) (\/[^?\s]*)(?:\?(\S*))?$/.exec(span!);
      if (call !== null) {
        calls.push({ method: call[1]!, template: call[2]!, query: call[3] === undefined ? [] : [...new URLSearchParams(call[3]).keys()] });
      } else if (/^\{.*\}$/.test(span!) && calls.length > 0) {
        calls[calls.length - 1]!.fields = span!.slice(1, -1).split(',').map((field) => field.trim());
      }
    }
  }
  return calls;
}

t.test("the README's call table names documented calls, their query parameters and body fields, and misses none", async (t) => {
  const calls = readmeCallTable();
  for (const call of calls) {
    const operation = document.paths[call.template]?.[call.method.toLowerCase()];
    const name = `${call.method} ${call.template}`;
    if (operation === undefined) {
      t.fail(`${name} is not in the document`);
      continue;
    }
    const query = (operation.parameters ?? []).filter((parameter) => parameter.in === 'query').map((parameter) => parameter.name);
    t.same(call.query, query.filter((parameter) => call.query.includes(parameter)), `${name}: its query parameters exist`);
    const schema = operation.requestBody?.content['application/json']?.schema as { properties: Record<string, unknown>; required?: string[] } | undefined;
    t.equal(call.fields !== undefined, schema !== undefined, `${name}: a body is shown exactly when it takes one`);
    if (call.fields !== undefined && schema !== undefined) {
      const shown = Object.fromEntries(call.fields.map((field) => [field.replace(/\?$/, ''), field.endsWith('?') ? 'optional' : 'required']));
      const actual = Object.fromEntries(Object.keys(schema.properties).map((field) => [field, schema.required?.includes(field) ? 'required' : 'optional']));
      t.same(shown, actual, `${name}: every field, required or optional as documented`);
    }
  }
  const listed = new Set(calls.map((call) => `${call.method.toLowerCase()} ${call.template}`));
  t.same(
    operations.filter(({ operation }) => !operation.tags?.includes('node API')).map(({ method, template }) => `${method} ${template}`).filter((operation) => !listed.has(operation)),
    [],
    'every call but the node API is in the table',
  );
});

t.test('the reference page renders every operation under the strict CSP', { skip: hasChromium() ? false : 'Chromium is not installed' }, async (t) => {
  const page = await fetch(`${cp.url}/reference`);
  t.equal(page.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
  t.notMatch(await page.text(), /<script>|<style>|\sstyle=|\son\w+=/, 'no inline script or style');
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = watchProblems(tab);
  const outside: string[] = [];
  tab.on('request', (request) => {
    if (!request.url().startsWith(cp.url) && !request.url().startsWith('data:')) outside.push(request.url());
  });
  await tab.goto(`${cp.url}/reference`);
  await tab.locator('.operation').nth(operations.length - 1).waitFor();
  t.equal(await tab.locator('.operation').count(), operations.length, 'a section per operation');
  const bulk = tab.locator('section.operation', { hasText: 'POST /v1/teams/{team}/keys/bulk' });
  t.match(await bulk.textContent(), /keys\[\]\.name/, 'request fields, nested ones by path');
  t.match(await bulk.textContent(), /key_name_taken/, 'error codes');
  await tab.screenshot({ path: `${ARTIFACTS}/api-reference.png` });
  t.same(problems, [], 'no script errors or CSP violations');
  t.same(outside, [], 'nothing loaded from another origin');
});
