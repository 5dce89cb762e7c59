import t from 'tap';
import http from 'node:http';
import { MAX_NODE_API_BODY_BYTES, MAX_USAGE_ENTRIES } from '../../contract/node-api.js';
import { deadline } from '../helpers/deadline.js';
import { inBatches } from '../helpers/batches.js';
import { startProcessWorld } from '../helpers/process-world.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { seedUsableKeys } from '../helpers/seed-keys.js';

/**
 * 10,000 distinct keys busy in one flush window, more than one batch of the node API's body
 * limit holds. Promise: the node splits its usage to fit, every key's usage arrives, nothing
 * is left pending, and SIGTERM does not have to wait out its deadline.
 */

const KEYS = 10_000;
const SHUTDOWN_DEADLINE_MS = 20_000;
const NODE_ID = 'node-busy';

const world = await startProcessWorld();
t.teardown(() => world.close());
const { cp, origin, team } = world;
const keys = await seedUsableKeys(cp.adminDb, team.id, KEYS);

t.test('10,000 busy keys in one flush window: split batches, every key reported, SIGTERM well within its deadline', async (t) => {
  // One window: nothing is flushed before SIGTERM.
  const node = await world.startNode({ env: { NODE_ID, USAGE_FLUSH_MS: '600000', SHUTDOWN_DEADLINE_MS: String(SHUTDOWN_DEADLINE_MS) } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  t.teardown(() => agent.destroy());
  let served = 0;
  await inBatches(keys, 200, async (key) => {
    const response = await proxyRequest(node.port, `${origin.url}/busy`, bearer(key), { agent });
    if (response.status === 200) served++;
  });
  t.equal(served, KEYS, 'every key was served once');
  agent.destroy();

  const started = Date.now();
  const exit = await node.kill('SIGTERM');
  const stoppedMs = Date.now() - started;
  t.equal(exit.code, 0, 'exited cleanly');
  t.ok(node.logLines().some((line) => line.msg === 'shut down cleanly'), 'it finished draining and delivering');
  t.ok(stoppedMs < deadline(SHUTDOWN_DEADLINE_MS / 2), `exited ${stoppedMs} ms after SIGTERM, far from its ${SHUTDOWN_DEADLINE_MS} ms deadline`);
  t.notOk(node.logLines().some((line) => line.msg === 'usage not delivered before shutdown'), 'nothing left undelivered');

  const { rows } = await cp.adminDb.query<{ keys: number; requests: number }>(
    'SELECT count(*)::int AS keys, sum(requests)::int AS requests FROM usage_hourly WHERE team_id = $1',
    [team.id],
  );
  t.same(rows[0], { keys: KEYS, requests: KEYS }, 'each of the 10,000 keys has its one request');
  const batches = await cp.adminDb.query<{ count: number }>('SELECT count(*)::int AS count FROM usage_batches WHERE node_id = $1', [NODE_ID]);
  t.equal(batches.rows[0]!.count, KEYS / MAX_USAGE_ENTRIES, `sent as batches of ${MAX_USAGE_ENTRIES} entries`);
});

t.test('a full usage batch of the largest entries the contract allows fits the node API body limit', async (t) => {
  const name = 'k'.repeat(100);
  const largest = { keyId: name, teamId: name, bytesIn: Number.MAX_SAFE_INTEGER, bytesOut: Number.MAX_SAFE_INTEGER, requests: Number.MAX_SAFE_INTEGER, tunnels: Number.MAX_SAFE_INTEGER };
  const body = JSON.stringify({ nodeId: name, boot: 'b'.repeat(64), batch: Number.MAX_SAFE_INTEGER, entries: Array.from({ length: MAX_USAGE_ENTRIES }, () => largest) });
  t.ok(body.length <= MAX_NODE_API_BODY_BYTES, `${body.length} bytes ≤ ${MAX_NODE_API_BODY_BYTES}`);
});
