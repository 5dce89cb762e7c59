import t, { type Test } from 'tap';
import net from 'node:net';
import { generateToken } from '../../lib/secret-format.js';
import { createApiClient } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startControlPlaneProcess, startProcess, startProxyProcess, type ChildServer } from '../helpers/processes.js';
import { basic, bearer, proxyConnect, proxyRequest } from '../helpers/proxy-client.js';
import { startRedis } from '../helpers/redis.js';

/**
 * SIGTERM on every executable. Promise: from the moment the signal arrives /readyz stops
 * saying ready (503 while open work drains), so a load balancer stops sending traffic, and
 * the process exits 0 once its open requests and tunnels are done.
 */

const database = await createTestDatabase();
t.teardown(() => database.drop());
const adminToken = generateToken();
const nodeToken = generateToken();
const redis = await startRedis();
t.teardown(() => redis.close());
const controlPlaneEnv = { DATABASE_URL: database.url, ADMIN_TOKEN: adminToken, NODE_TOKEN: nodeToken, REGIONS: `eu=${redis.url}` };
const controlPlane = await startControlPlaneProcess(controlPlaneEnv);
t.teardown(() => controlPlane.stop());
const api = createApiClient(controlPlane.url, adminToken);
await api.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'DE', url: 'direct' }] } });
const team = (await api.request('POST', '/v1/teams', { body: { name: 'draining' } })).body;
const { key } = (await api.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'draining' } })).body;

// A target that keeps a tunnel open until the test lets it go.
const target = net.createServer((socket) => socket.on('data', (chunk) => socket.write(chunk)));
await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
t.teardown(() => target.close());
const targetPort = (target.address() as net.AddressInfo).port;

async function readyStatus(url: string): Promise<number | 'refused'> {
  return fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
    async (response) => {
      await response.body?.cancel();
      return response.status;
    },
    () => 'refused' as const,
  );
}

/**
 * Sends SIGTERM and, from the moment the process says it has it, polls /readyz until the
 * process has exited; returns every answer seen.
 */
async function readinessWhileStopping(t: Test, child: ChildServer, readyzUrl: string, whileDraining: () => Promise<void>): Promise<(number | 'refused')[]> {
  const answers: (number | 'refused')[] = [];
  child.process.kill('SIGTERM');
  await child.waitForLog('shutting down: draining');
  let exited = false;
  void child.exited.then(() => (exited = true));
  const polling = (async () => {
    while (!exited) answers.push(await readyStatus(readyzUrl));
  })();
  await waitFor(() => answers.length >= 3 || exited, { what: 'readiness answers after SIGTERM' });
  await whileDraining();
  const { code } = await child.exited;
  await polling;
  t.equal(code, 0, 'it exits 0 once drained');
  return answers;
}

t.test("a node's /readyz answers 503 from SIGTERM while an open tunnel drains, then it exits 0", async (t) => {
  const node = await startProxyProcess({ REGION: 'eu', REDIS_URL: redis.url, CONTROL_PLANE_URL: controlPlane.url, NODE_TOKEN: nodeToken, SHUTDOWN_DEADLINE_MS: '20000' });
  t.teardown(() => node.stop());
  const readyz = `http://127.0.0.1:${node.metricsPort}/readyz`;
  await waitFor(async () => (await readyStatus(readyz)) === 200, { what: 'the node to be ready' });
  const tunnel = await proxyConnect(node.port, `127.0.0.1:${targetPort}`, bearer(key));
  t.equal(tunnel.status, 200, 'a tunnel is open');
  const answers = await readinessWhileStopping(t, node, readyz, async () => {
    t.equal(node.process.exitCode, null, 'the node is still draining the tunnel');
    t.equal((await proxyRequest(node.port, 'http://127.0.0.1/', bearer(key)).catch(() => undefined)) === undefined, true, 'and takes no new connection');
    tunnel.socket.destroy();
  });
  const whileServing = answers.slice(0, answers.indexOf('refused') < 0 ? answers.length : answers.indexOf('refused'));
  t.ok(whileServing.length >= 3, `${whileServing.length} answers while draining`);
  t.same([...new Set(whileServing)], [503], 'every /readyz answer after SIGTERM was 503 until the ops server closed at the end');
});

t.test("the exit's and the control plane's /readyz never say ready after SIGTERM", async (t) => {
  const exitToken = generateToken();
  const exit = await startProcess({ entry: 'bin/portcullis.ts', args: ['exit'], env: { COUNTRY: 'DE', PORT: '0', EXIT_TOKEN: exitToken, ALLOW_PRIVATE_DESTINATIONS: 'true', LOG_LEVEL: 'info' }, ready: /exit listening/ });
  t.teardown(() => exit.stop());
  const exitUrl = String((await exit.waitForLog('exit listening')).url);
  const exitTunnel = await proxyConnect(Number(new URL(exitUrl).port), `127.0.0.1:${targetPort}`, basic('exit', exitToken));
  t.equal(exitTunnel.status, 200, 'a tunnel through the exit is open');
  const exitAnswers = await readinessWhileStopping(t, exit, `${exitUrl}/readyz`, async () => void exitTunnel.socket.destroy());
  t.notOk(exitAnswers.includes(200), `the exit: ${[...new Set(exitAnswers)].join(', ')}`);

  const other = await startControlPlaneProcess(controlPlaneEnv);
  t.teardown(() => other.stop());
  t.equal(await readyStatus(`${other.url}/readyz`), 200);
  const controlPlaneAnswers = await readinessWhileStopping(t, other, `${other.url}/readyz`, async () => {});
  t.notOk(controlPlaneAnswers.includes(200), `the control plane: ${[...new Set(controlPlaneAnswers)].join(', ')}`);
});
