import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateToken } from '../../lib/secret-format.js';
import { createApiClient } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';
import { startOrigin } from '../helpers/origin.js';
import { freePort } from '../helpers/ports.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { runToExit, startControlPlaneProcess, startProcess } from '../helpers/processes.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRedis } from '../helpers/redis.js';

/**
 * Starting up with something in the way. Promise: a port already in use is named by its
 * setting in one line, with a non-zero exit and no stack trace; `portcullis start` creates
 * the secrets it shows once only after binding every port, so a failed start loses none; a
 * node whose control plane is not up yet, or refuses its token, waits with backoff and
 * says so once, and never crashes.
 */

const database = await createTestDatabase();
t.teardown(() => database.drop());
const adminToken = generateToken();
const nodeToken = generateToken();
const controlPlaneEnv = { DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken };
const controlPlane = await startControlPlaneProcess(controlPlaneEnv);
t.teardown(() => controlPlane.stop());
const redis = await startRedis();
t.teardown(() => redis.close());
const squatter = net.createServer();
await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
t.teardown(() => squatter.close());
const taken = String((squatter.address() as net.AddressInfo).port);
const proxyEnv = { CONTROL_PLANE_URL: controlPlane.url, REDIS_URL: redis.url, NODE_TOKEN: nodeToken, PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'info', WORKERS: '1' };

/** What a failed start wrote that is not a JSON log line. */
const messageLines = (output: string) => output.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));

t.test('a port already in use: each executable names its setting in one line and exits non-zero', async (t) => {
  const cases = [
    { command: 'control-plane', variable: 'PORT', env: { ...controlPlaneEnv, PORT: taken } },
    { command: 'proxy', variable: 'PORT', env: { ...proxyEnv, PORT: taken } },
    { command: 'proxy', variable: 'METRICS_PORT', env: { ...proxyEnv, METRICS_PORT: taken } },
    { command: 'exit', variable: 'PORT', env: { COUNTRY: 'DE', EXIT_TOKEN: generateToken(), PORT: taken } },
  ];
  const outcomes = await Promise.all(cases.map(({ command, env }) => runToExit({ entry: 'bin/portcullis.ts', args: [command], env })));
  for (const [i, { command, variable }] of cases.entries()) {
    const { code, output } = outcomes[i]!;
    t.not(code, 0, `${command} with ${variable} taken exits non-zero`);
    t.same(messageLines(output), [`portcullis ${command}: ${variable}=${taken} is already in use by another process; choose another`], 'with one line naming the setting');
  }
});

t.test('portcullis start with PROXY_PORT in use loses no secret: the next start shows the admin token and the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { DATA_DIR: join(dir, 'data'), PORT: '0', PROXY_PORT: taken, METRICS_PORT: '0', DATABASE_URL: '', LOG_LEVEL: 'warn' };
  const failed = await runToExit({ entry: 'bin/portcullis.ts', args: ['start'], env });
  t.not(failed.code, 0, 'the failed start exits non-zero');
  t.same(messageLines(failed.output), [`portcullis start: PROXY_PORT=${taken} is already in use by another process; choose another`]);
  const started = await startProcess({ entry: 'bin/portcullis.ts', args: ['start'], env: { ...env, PROXY_PORT: '0' }, ready: /Portcullis is running\./ });
  t.teardown(() => started.stop());
  await waitFor(() => started.output().includes('curl -x'), { what: 'the first-start lines' });
  t.match(started.output(), /platform admin token: pc_tok_/, 'the admin token is shown: the failed start created none');
  t.match(started.output(), /API key "quickstart" of team "default" \(team_[^)]+\): sk_live_/, 'and so is the key');
});

/** Forwards to the control plane, counting the node API calls that pass. */
async function countingForwarder(target: string): Promise<{ url: string; calls: () => number }> {
  let calls = 0;
  const server = http.createServer((request, response) => {
    if (request.url?.startsWith('/internal/')) calls++;
    const upstream = http.request(new URL(request.url!, target), { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, calls: () => calls };
}

t.test('a node whose NODE_TOKEN is refused keeps trying with backoff, says so once, and lives', async (t) => {
  const forwarder = await countingForwarder(controlPlane.url);
  const node = await startProcess({
    entry: 'bin/portcullis.ts',
    args: ['proxy'],
    env: { ...proxyEnv, CONTROL_PLANE_URL: forwarder.url, NODE_TOKEN: generateToken() },
    ready: /control plane not usable yet/,
  });
  t.teardown(() => node.stop());
  await waitFor(() => forwarder.calls() >= 4, { what: 'the node to try again and again' });
  t.equal(node.process.exitCode, null, 'it is still running');
  const said = node.logLines().filter((line) => line.msg === 'control plane not usable yet; retrying with backoff');
  t.equal(said.length, 1, `said once over ${forwarder.calls()} tries`);
  t.equal(said[0]!.reason, 'the control plane refuses NODE_TOKEN', 'naming the token as the reason');
  t.notMatch(node.output(), /\n\s+at /, 'no stack trace');
});

t.test('a node started before its control plane waits for it, then starts by itself', async (t) => {
  const port = await freePort();
  const node = await startProcess({
    entry: 'bin/portcullis.ts',
    args: ['proxy'],
    env: { ...proxyEnv, CONTROL_PLANE_URL: `http://127.0.0.1:${port}`, ALLOW_PRIVATE_DESTINATIONS: 'true', POOL_REFRESH_MS: '500' },
    ready: /control plane not usable yet/,
  });
  t.teardown(() => node.stop());
  const late = await startControlPlaneProcess({ ...controlPlaneEnv, PORT: String(port) });
  t.teardown(() => late.stop());
  const listening = await node.waitForLog('proxy node listening', undefined, 20_000);
  t.ok(node.logLines().some((line) => line.msg === 'control plane reached: starting'), 'it says when the control plane answers');

  const api = createApiClient(late.url, adminToken);
  await api.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'DE', url: 'direct' }] } });
  const team = (await api.request('POST', '/v1/teams', { body: { name: 'late' } })).body;
  const { key } = (await api.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'late' } })).body;
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxyPort = Number(new URL(String(listening.url)).port);
  await waitFor(async () => (await proxyRequest(proxyPort, `${origin.url}/`, bearer(key))).status === 200, { what: 'the node to serve a key' });
  t.pass('and then serves traffic');
});
