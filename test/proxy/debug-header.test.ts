import t from 'tap';
import { waitFor } from '../helpers/deadline.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());

const DEBUG = { 'proxy-debug': '1' };

/** `Proxy-Debug-Info`'s `name=value; …` pairs. */
function parse(header: string | string[] | undefined): Record<string, string> {
  return Object.fromEntries(String(header).split('; ').map((part) => part.split('=') as [string, string]));
}

t.test('a key whose team does not enable debugging gets no debug answer, and the header never reaches the target', async (t) => {
  const { key } = await world.createKey();
  const response = await proxyRequest(world.node.port, `${world.origin.url}/not-debugged`, { ...bearer(key), ...DEBUG });
  t.equal(response.status, 200);
  t.equal(response.headers['proxy-debug-info'], undefined);
  const seen = world.origin.seen.find((request) => request.url === '/not-debugged');
  t.ok(seen, 'the request was served');
  t.equal(seen!.headers['proxy-debug'], undefined, 'Proxy-Debug is stripped before forwarding');
});

t.test('once the team enables debugging, Proxy-Debug: 1 gets the decision’s timings and path', async (t) => {
  const { key } = await world.createKey({ rateLimit: { requestsPerSecond: 50 } });
  // The key is cached before the change: the team.updated event makes the node ask again.
  t.equal((await proxyRequest(world.node.port, `${world.origin.url}/warm`, bearer(key))).status, 200);
  const enabled = await world.cp.request('PATCH', `/v1/teams/${world.team.id}`, { body: { debugEnabled: true } });
  t.equal(enabled.status, 200);
  t.equal(enabled.body.debugEnabled, true);
  t.equal(enabled.body.monthlyQuotaBytes, null, 'the quota is left as it was');
  const byTeam = await world.cp.request('PATCH', `/v1/teams/${world.team.id}`, { token: world.team.token, body: { debugEnabled: false } });
  t.equal(byTeam.status, 403, 'a team token cannot change it');

  const first = await waitFor(
    async () => {
      const response = await proxyRequest(world.node.port, `${world.origin.url}/debugged`, { ...bearer(key), ...DEBUG });
      return response.headers['proxy-debug-info'] === undefined ? undefined : response;
    },
    { what: 'the node to learn that the team enabled debugging' },
  );
  t.equal(first.status, 200);
  const info = parse(first.headers['proxy-debug-info']);
  t.equal(info.auth, 'verify', 'the first request after the change verified the key');
  t.match(info.auth_ms, /^\d+\.\d\d$/);
  t.equal(info.limiter, 'local', 'the limiter mode (this node has no Redis)');
  t.match(info.remaining, /^\d+$/, 'the rate limit remaining');
  t.match(info.exit, /^[\w-]+$/, 'the exit chosen, by id (never its URL, which holds its token)');
  t.equal(info.attempts, '1');
  t.equal(info.trace, undefined, 'no trace id while tracing is off');
  t.equal(world.origin.seen.find((request) => request.url === '/debugged')!.headers['proxy-debug'], undefined, 'still stripped');

  const second = await proxyRequest(world.node.port, `${world.origin.url}/debugged-again`, { ...bearer(key), ...DEBUG });
  t.equal(parse(second.headers['proxy-debug-info']).auth, 'hit', 'the next one is a cache hit');
  const without = await proxyRequest(world.node.port, `${world.origin.url}/plain`, bearer(key));
  t.equal(without.headers['proxy-debug-info'], undefined, 'nothing without the header');
  t.equal(without.headers['x-portcullis-trace-id'], undefined);
});

t.test('the team setting is validated and recorded', async (t) => {
  const bad = await world.cp.request('PATCH', `/v1/teams/${world.team.id}`, { body: { debugEnabled: 'yes' } });
  t.equal(bad.status, 400);
  t.equal(bad.body.error.code, 'invalid_field');
  const empty = await world.cp.request('PATCH', `/v1/teams/${world.team.id}`, { body: {} });
  t.equal(empty.status, 400);
  const read = await world.cp.request('GET', `/v1/teams/${world.team.id}`);
  t.equal(read.body.debugEnabled, true);
});
