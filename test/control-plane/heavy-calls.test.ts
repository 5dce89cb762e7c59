import t from 'tap';
import pg from 'pg';
import { createControlPlane } from '../../control-plane/control-plane.js';
import { sha256Hex } from '../../lib/hash.js';
import { createApiClient, startTestControlPlane, testControlPlaneOptions } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';

const cp = await startTestControlPlane({ heavyCalls: { concurrency: 2, queue: 3, queueWaitMs: 60_000 } });
t.teardown(() => cp.close());
const team = await cp.createTeam();
const created = await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'hot' } });
const hash = sha256Hex(created.body.key);

/**
 * Holds every activity and token list call on its query until released; verification reads
 * neither table.
 */
async function lockLists(url: string): Promise<{ release(): Promise<void> }> {
  const blocker = new pg.Client({ connectionString: url });
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE activity, tokens IN ACCESS EXCLUSIVE MODE');
  return {
    async release() {
      await blocker.query('COMMIT');
      await blocker.end();
    },
  };
}

t.test('past its slots and queue, a heavy call is answered 503 busy at once, and the limit recovers', async (t) => {
  const lock = await lockLists(cp.database.url);
  const held = [
    cp.request('GET', `/v1/teams/${team.id}/activity?limit=500`),
    cp.request('GET', `/v1/teams/${team.id}/tokens`),
    cp.request('GET', `/v1/teams/${team.id}/activity`),
    cp.request('GET', `/v1/teams/${team.id}/activity?limit=10`),
    cp.request('GET', `/v1/teams/${team.id}/tokens?limit=10`),
  ];
  await waitFor(() => cp.heavyCalls.stats().running === 2 && cp.heavyCalls.stats().waiting === 3, { what: 'two heavy calls running and three queued' });

  const started = performance.now();
  const refused = await cp.request('GET', `/v1/teams/${team.id}/keys`);
  t.equal(refused.status, 503, 'the sixth heavy call is refused');
  t.equal(refused.body.error.code, 'busy');
  t.equal(refused.headers.get('retry-after'), '1', 'with Retry-After');
  t.ok(performance.now() - started < 1_000, 'refused without waiting for a slot');
  const metrics = await cp.request('GET', '/metrics', { token: null });
  t.match(metrics.body, /portcullis_admin_heavy_calls\{state="waiting"\} 3/, 'the queue shows in /metrics');
  t.match(metrics.body, /portcullis_admin_heavy_calls_refused_total 1/, 'and the refusal');

  const me = await cp.request('GET', '/v1/me');
  t.equal(me.status, 200, 'a call that is not heavy is not held by the limit');
  const verify = await cp.request('POST', '/internal/v1/keys/verify', { token: cp.nodeToken, body: { hashes: [hash] } });
  t.equal(verify.body.keys?.[hash]?.id, created.body.id, 'the node API answers while the limit is full');

  await lock.release();
  const answers = await Promise.all(held);
  t.same(
    answers.map((answer) => answer.status),
    [200, 200, 200, 200, 200],
    'every running and queued call completes',
  );
  await waitFor(() => cp.heavyCalls.stats().running === 0, { what: 'every slot given back' });
  t.same(cp.heavyCalls.stats(), { running: 0, waiting: 0, refused: 1 }, 'nothing left running or queued');
  const again = await Promise.all(Array.from({ length: 5 }, () => cp.request('GET', `/v1/teams/${team.id}/keys?limit=500`)));
  t.same(
    again.map((answer) => answer.status),
    [200, 200, 200, 200, 200],
    'recovered: as many calls as fit run again',
  );
});

t.test('a heavy call waiting longer than ADMIN_HEAVY_QUEUE_MS is answered busy; clients that leave give their slots back', async (t) => {
  const impatient = await createControlPlane(
    testControlPlaneOptions(cp.database.url, { adminToken: cp.adminToken, nodeToken: cp.nodeToken, heavyCalls: { concurrency: 1, queue: 10, queueWaitMs: 200 } }),
  );
  t.teardown(() => impatient.close());
  const api = createApiClient(impatient.url, cp.adminToken);
  const lock = await lockLists(cp.database.url);
  const leaving = new AbortController();
  const running = fetch(new URL(`/v1/teams/${team.id}/tokens`, impatient.url), { headers: { authorization: `Bearer ${cp.adminToken}` }, signal: leaving.signal }).catch(
    (error: Error) => error.name,
  );
  await waitFor(() => impatient.heavyCalls.stats().running === 1, { what: 'the slot taken' });

  const started = performance.now();
  const waited = await api.request('GET', `/v1/teams/${team.id}/activity`);
  const elapsed = performance.now() - started;
  t.equal(waited.body.error?.code, 'busy', 'a queued call is refused once it has waited its bound');
  t.ok(elapsed >= 150 && elapsed < 5_000, `after about ADMIN_HEAVY_QUEUE_MS (${elapsed.toFixed(0)} ms)`);

  leaving.abort();
  t.equal(await running, 'AbortError');
  await waitFor(() => impatient.heavyCalls.stats().running === 0, { what: 'the abandoned call to give its slot back while its query still waits' });
  await lock.release();
  t.equal((await api.request('GET', `/v1/teams/${team.id}/keys`)).status, 200, 'the next call runs');
});
