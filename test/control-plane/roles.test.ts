import t from 'tap';
import { readControlPlaneConfig, ROLES, type Role } from '../../control-plane/config.js';
import { createControlPlane, type ControlPlane } from '../../control-plane/control-plane.js';
import { RELAY_LOCK } from '../../control-plane/revocation/relay.js';
import { decodeFeedMessage, type FeedMessage } from '../../contract/feed.js';
import { createInProcessBus } from '../../lib/feed/in-process-bus.js';
import { ConfigError } from '../../lib/env.js';
import { sha256Hex } from '../../lib/hash.js';
import { createApiClient, startTestControlPlane, testControlPlaneOptions, type ApiClient } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';

const config = (roles: string | undefined) => readControlPlaneConfig({ NODE_TOKEN: 'n'.repeat(32), ...(roles !== undefined && { ROLES: roles }) }, { dataDir: 'unused', requireNodeToken: true });
const problems = (value: string) => {
  try {
    config(value);
    return [];
  } catch (error) {
    return (error as ConfigError).problems;
  }
};

t.test('ROLES: every role by default, any subset, and a bad list names the variable', async (t) => {
  t.same([...config(undefined).roles].sort(), [...ROLES].sort());
  t.same([...config('node-api').roles], ['node-api']);
  t.same([...config(' admin , relay ').roles], ['admin', 'relay']);
  t.match(problems('admin,dashboard'), [/^ROLES .*unknown role "dashboard"/]);
  t.match(problems('relay,relay'), [/^ROLES lists "relay" twice/]);
  t.match(problems(','), [/^ROLES /, /^ROLES /]);
});

// The first instance migrates the database and has every role; the others join it with one role set each.
const full = await startTestControlPlane();
t.teardown(() => full.close());
await full.relay.close();
const team = await full.createTeam();
const created = await full.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'k' } });
const hash = sha256Hex(created.body.key);

async function relayLocksHeld(): Promise<number> {
  const { rows } = await full.adminDb.query<{ held: number }>(
    `SELECT count(*)::int AS held FROM pg_locks
      WHERE locktype = 'advisory' AND objid = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [RELAY_LOCK],
  );
  return rows[0]!.held;
}

async function start(roles: Role[], publishers = new Map()): Promise<ControlPlane & { api: ApiClient }> {
  const cp = await createControlPlane(testControlPlaneOptions(full.database.url, { adminToken: full.adminToken, nodeToken: full.nodeToken, roles: new Set(roles), publishers }));
  t.teardown(() => cp.close());
  return Object.assign(cp, { api: createApiClient(cp.url, full.adminToken) });
}

async function serves(api: ApiClient) {
  const admin = await api.request('GET', '/v1/me');
  const dashboard = await api.request('GET', '/', { token: null });
  const document = await api.request('GET', '/openapi.json', { token: null });
  const node = await api.request('POST', '/internal/v1/keys/verify', { token: full.nodeToken, body: { hashes: [hash] } });
  const ready = await api.request('GET', '/readyz', { token: null });
  return { admin: admin.status, dashboard: dashboard.status, document: document.status, node: node.status, ready: ready.status, notFound: admin.status === 404 ? admin.body.error.code : null };
}

t.test('each role set serves only its part; only the relay role takes the relay lock', async (t) => {
  t.equal(await relayLocksHeld(), 0, 'nobody leads once the first instance stopped relaying');

  const nodeApi = await start(['node-api']);
  t.same(await serves(nodeApi.api), { admin: 404, dashboard: 404, document: 404, node: 200, ready: 200, notFound: 'route_not_found' }, 'node-api: the node API only');
  const admin = await start(['admin']);
  t.same(await serves(admin.api), { admin: 200, dashboard: 200, document: 200, node: 404, ready: 200, notFound: null }, 'admin: the admin API, dashboard and document only');
  const both = await start(['admin', 'node-api']);
  t.same(await serves(both.api), { admin: 200, dashboard: 200, document: 200, node: 200, ready: 200, notFound: null }, 'admin,node-api: both APIs');
  const nodePaths = (await admin.api.request('GET', '/openapi.json', { token: null })).body.paths as Record<string, unknown>;
  t.notOk(
    Object.keys(nodePaths).some((path) => path.startsWith('/internal/')),
    'an instance without node-api does not document the node API',
  );

  // A relay tries the lock before its control plane's start resolves: had any of them one, it would hold it now.
  t.equal(await relayLocksHeld(), 0, 'no instance without the relay role took the lock');
  t.notOk(nodeApi.relay.isLeader() || admin.relay.isLeader() || both.relay.isLeader(), 'and none claims to lead');

  const bus = createInProcessBus();
  const published: FeedMessage[] = [];
  const subscriber = bus.subscriber();
  await subscriber.start({
    message(text) {
      const decoded = decodeFeedMessage(text);
      if (decoded.ok) published.push(decoded.value);
    },
    connected: () => {},
    disconnected: () => {},
  });
  t.teardown(() => subscriber.close());
  const relay = await start(['relay'], new Map([['local', bus.publisher()]]));
  t.same(await serves(relay.api), { admin: 404, dashboard: 404, document: 404, node: 404, ready: 200, notFound: 'route_not_found' }, 'relay: no API at all');
  await waitFor(() => relay.relay.isLeader(), { what: 'the relay instance to lead' });
  t.equal(await relayLocksHeld(), 1, 'the relay instance holds the lock');

  const revoked = await admin.api.request('POST', `/v1/teams/${team.id}/keys/${created.body.id}/revoke`);
  t.equal(revoked.status, 200, 'revoked through the admin instance');
  await waitFor(() => published.some((message) => message.type === 'event' && 'keyHash' in message && message.keyHash === hash), { what: 'the relay instance to publish the revocation' });
  const verify = await nodeApi.api.request('POST', '/internal/v1/keys/verify', { token: full.nodeToken, body: { hashes: [hash] } });
  t.equal(verify.body.keys?.[hash]?.status, 'revoked', 'the node-api instance answers that the key is revoked');
});
