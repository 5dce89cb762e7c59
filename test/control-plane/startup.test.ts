import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFirstAdminToken } from '../../control-plane/bootstrap.js';
import { createControlPlane } from '../../control-plane/control-plane.js';
import { currentEpoch } from '../../control-plane/revocation/feed-epoch.js';
import { createLogger } from '../../lib/logger.js';
import { generateToken } from '../../lib/secret-format.js';
import { waitFor } from '../helpers/deadline.js';
import { createApiClient, DEFAULT_SETTINGS } from '../helpers/control-plane.js';
import { startOrigin } from '../helpers/origin.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { basic, proxyRequest } from '../helpers/proxy-client.js';

t.test('two control planes starting at once on an empty database migrate it once', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const options = {
    host: '127.0.0.1',
    port: 0,
    database: { url: database.url },
    adminPool: { maxConnections: 2, statementTimeoutMs: 10_000, connectionTimeoutMs: 10_000 },
    nodePool: { maxConnections: 2, statementTimeoutMs: 10_000, connectionTimeoutMs: 10_000 },
    heavyCalls: DEFAULT_SETTINGS.heavyCalls,
    roles: DEFAULT_SETTINGS.roles,
    adminToken: undefined,
    nodeToken: generateToken(),
    bodyLimitBytes: 65_536,
    trustProxy: false,
    logger: createLogger({ level: 'silent', name: 'cp' }),
    publishers: new Map(),
    relay: { heartbeatMs: 500, pollMs: 1_000, leaseMs: 5_000 },
    nodeLivenessMs: 10_000,
    retention: DEFAULT_SETTINGS.retention,
  };
  const [a, b] = await Promise.all([createControlPlane(options), createControlPlane(options)]);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const { rows } = await a.adminDb.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
  const files = readdirSync('control-plane/db/migrations').map((file) => file.replace(/\.sql$/, '')).sort();
  t.same(rows.map((row) => row.version), files, 'every migration applied once');
  const tokens = (await Promise.all([createFirstAdminToken(a.adminDb), createFirstAdminToken(b.adminDb)])).filter((token) => token !== undefined);
  t.equal(tokens.length, 1, 'exactly one of them created and showed the first admin token');
  t.equal(await currentEpoch(a.adminDb), await currentEpoch(b.adminDb), 'and they agree on the feed epoch');
  t.equal([a.relay.isLeader(), b.relay.isLeader()].filter(Boolean).length, 1, 'exactly one relay leads');
});

t.test('portcullis start: a working setup on the embedded database, kept across restarts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Port 0 everywhere: the ports in use are read back from what start prints.
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', PROXY_PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'warn', ALLOW_PRIVATE_DESTINATIONS: 'true' };
  delete env.DATABASE_URL;

  async function start(): Promise<{ output: () => string; port: number; proxyPort: number; stop: () => Promise<number | null> }> {
    // What `npm start` runs (node with tsx's loader, so signals reach our process directly),
    // from an empty working directory.
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(process.cwd(), 'bin/portcullis.ts'), 'start'], { cwd: dir, env });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const state = await waitFor(() => (child.exitCode !== null ? 'exited' : output.includes('Portcullis is running.') && 'running'), {
      what: 'portcullis start to be up',
      timeoutMs: 60_000,
    }).catch(() => 'timed out');
    if (state !== 'running') {
      child.kill('SIGKILL');
      throw new Error(`portcullis start ${state}:\n${output}`);
    }
    return {
      output: () => output,
      port: Number(/control plane and dashboard: http:\/\/127\.0\.0\.1:(\d+)\//.exec(output)![1]),
      proxyPort: Number(/proxy: http:\/\/127\.0\.0\.1:(\d+)/.exec(output)![1]),
      stop: () =>
        new Promise((resolve) => {
          child.once('exit', (code) => resolve(code));
          child.kill('SIGTERM');
        }),
    };
  }

  const first = await start();
  const { port, proxyPort } = first;
  const key = /sk_live_[A-Za-z0-9]+/.exec(first.output())?.[0];
  const adminToken = /platform admin token: (pc_tok_[A-Za-z0-9]+)/.exec(first.output())?.[1];
  t.ok(key, 'the first start prints a key');
  t.ok(adminToken, 'and the admin token');
  t.match(first.output(), new RegExp(`curl -x http://user:${key}@127\\.0\\.0\\.1:${proxyPort} `), 'and a ready-to-paste curl line');
  const refused = await fetch(`http://127.0.0.1:${proxyPort}/`, { headers: {} }).catch(() => undefined);
  t.ok(refused, 'the proxy answers');
  const teams = await fetch(`http://127.0.0.1:${port}/v1/teams`, { headers: { authorization: `Bearer ${adminToken}` } });
  t.equal(teams.status, 200, 'the admin token works');
  const me = await fetch(`http://127.0.0.1:${port}/v1/me`, { headers: { authorization: `Bearer ${adminToken}` } });
  t.equal(((await me.json()) as { proxyUrl: string }).proxyUrl, `http://127.0.0.1:${proxyPort}`, "the dashboard's snippets point at the embedded node's bound port");

  const origin = await startOrigin();
  t.teardown(() => origin.close());
  t.equal((await proxyRequest(proxyPort, `${origin.url}/`, basic('user', key!))).status, 200, 'the printed key proxies a request');
  const admin = createApiClient(`http://127.0.0.1:${port}`, adminToken!);
  const team = ((await teams.json()) as { data: { id: string }[] }).data[0]!;
  const quickstart = (await admin.request('GET', `/v1/teams/${team.id}/keys`)).body.data[0];
  t.equal((await admin.request('POST', `/v1/teams/${team.id}/keys/${quickstart.id}/revoke`)).status, 200);
  await waitFor(async () => (await proxyRequest(proxyPort, `${origin.url}/`, basic('user', key!))).headers['x-portcullis-error'] === 'key_revoked', {
    what: 'the embedded node to refuse the revoked key',
  });
  t.pass('a revocation reaches the embedded node through the in-process bus');
  t.equal(await first.stop(), 0, 'SIGTERM exits 0');

  const second = await start();
  t.notMatch(second.output(), /platform admin token:/, 'the second start shows no new secrets');
  const again = await fetch(`http://127.0.0.1:${second.port}/v1/teams`, { headers: { authorization: `Bearer ${adminToken}` } });
  t.equal(((await again.json()) as { data: unknown[] }).data.length, 1, 'the data is still there');
  t.equal(await second.stop(), 0);
});
