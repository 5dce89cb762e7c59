import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInProcessBus } from '../../feed/in-process-bus.js';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { startTestProxyNode } from '../helpers/proxy-node.js';

const cp = await startTestControlPlane();
t.teardown(() => cp.close());
await cp.request('POST', '/v1/pools', { body: { name: 'default', exits: [{ country: 'DE', url: 'direct' }] } });
const team = await cp.createTeam();
const key = await cp.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'k' } });
const bus = createInProcessBus();
const node = await startTestProxyNode({ controlPlaneUrl: cp.url, nodeToken: cp.nodeToken, subscriber: bus.subscriber() });
t.teardown(() => node.close());
const origin = http.createServer((req, res) => res.end(`hello ${req.url}`));
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
t.teardown(() => origin.close());
const originPort = (origin.address() as AddressInfo).port;

function get(headers: Record<string, string>): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: node.port, path: `http://127.0.0.1:${originPort}/x`, headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('forwards with a bearer key and refuses without one', async (t) => {
  const ok = await get({ 'proxy-authorization': `Bearer ${key.body.key}` });
  t.equal(ok.status, 200);
  t.equal(ok.body, 'hello /x');
  const refused = await get({});
  t.equal(refused.status, 407);
  t.equal(refused.headers['x-portcullis-error'], 'auth_required');
});
