import t from 'tap';
import { deadline, waitFor } from '../helpers/deadline.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';
import { startTcpSwitch } from '../helpers/tcp-switch.js';

const STALENESS_MS = 1_000;
const world = await startRegions(['us', 'eu', 'ap']);
t.teardown(() => world.close());
const node = (region: string) => world.startNode(region, { stalenessBoundMs: STALENESS_MS });
const [us, eu, ap1, ap2] = [await node('us'), await node('eu'), await node('ap'), await node('ap')];
const revocationStatus = async (id: string) => (await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${id}/revocation`)).body;

t.test("a region whose Redis is down refuses within the staleness bound, then reports once Redis is back", async (t) => {
  const { id, key } = await world.createKey();
  for (const each of [us, eu, ap1, ap2]) t.equal((await proxyRequest(each!.port, `${world.origin.url}/`, bearer(key))).status, 200);
  const apRedis = world.redis.get('ap')!;
  await apRedis.stop();
  const revokedAt = Date.now();
  await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
  for (const each of [ap1, ap2]) {
    const after = await waitFor(
      async () => {
        const response = await proxyRequest(each!.port, `${world.origin.url}/`, bearer(key));
        return response.headers['x-portcullis-error'] === 'key_revoked' ? Date.now() - revokedAt : undefined;
      },
      { what: `${each!.nodeId} to refuse`, timeoutMs: STALENESS_MS + 1_000 },
    );
    t.ok(after <= deadline(STALENESS_MS + 1_000), `${each!.nodeId} refused after ${after} ms with its Redis down`);
  }
  const during = await revocationStatus(id);
  const apDuring = during.regions.find((region: any) => region.region === 'ap');
  t.equal(apDuring.published, false, 'the relay has not reached ap yet');

  await apRedis.start();
  const status = await waitFor(async () => {
    const body = await revocationStatus(id);
    return body.complete && body.regions.find((region: any) => region.region === 'ap').published ? body : undefined;
  }, { what: 'the backlog to reach ap and the endpoint to report it' });
  t.equal(status.regions.find((region: any) => region.region === 'ap').applied, 2);
});

t.test('with the control plane and Redis both unreachable, cached keys fail closed after the staleness bound', async (t) => {
  const { key } = await world.createKey();
  const link = await startTcpSwitch(world.cp.port);
  t.teardown(() => link.close());
  const failClosed = await world.startNode('eu', { stalenessBoundMs: STALENESS_MS, controlPlaneUrl: link.url });
  const failOpenNode = await world.startNode('eu', { stalenessBoundMs: STALENESS_MS, controlPlaneUrl: link.url, failOpen: true });
  t.equal((await proxyRequest(failClosed.port, `${world.origin.url}/`, bearer(key))).status, 200, 'cached on the fail-closed node');
  t.equal((await proxyRequest(failOpenNode.port, `${world.origin.url}/`, bearer(key))).status, 200, 'cached on the fail-open node');
  await world.redis.get('eu')!.stop();
  link.cut();
  const refused = await waitFor(
    async () => {
      const response = await proxyRequest(failClosed.port, `${world.origin.url}/`, bearer(key));
      return response.status === 503 ? response : undefined;
    },
    { what: 'the cached key to fail closed', timeoutMs: STALENESS_MS + 3_000 },
  );
  t.equal(refused.headers['x-portcullis-error'], 'auth_unavailable');
  t.ok(refused.headers['retry-after']);
  const open = await proxyRequest(failOpenNode.port, `${world.origin.url}/`, bearer(key));
  t.equal(open.status, 200, 'FAIL_OPEN serves the stale decision');
  link.restore();
  await world.redis.get('eu')!.start();
  await waitFor(async () => (await proxyRequest(failClosed.port, `${world.origin.url}/`, bearer(key))).status === 200, { what: 'recovery' });
});
