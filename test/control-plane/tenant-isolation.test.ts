import t from 'tap';
import { startTestControlPlane } from '../helpers/control-plane.js';

const cp = await startTestControlPlane();
t.teardown(() => cp.close());
const alpha = await cp.createTeam('alpha');
const beta = await cp.createTeam('beta');
const betaKey = await cp.request('POST', `/v1/teams/${beta.id}/keys`, { token: beta.token, body: { name: 'beta-key' } });

t.test("a team token sees another team's resources as not found", async (t) => {
  const as = (method: string, path: string, body?: unknown) => cp.request(method, path, { token: alpha.token, body });
  const attempts = [
    as('GET', `/v1/teams/${beta.id}`),
    as('GET', `/v1/teams/${beta.id}/keys`),
    as('GET', `/v1/teams/${beta.id}/keys/${betaKey.body.id}`),
    as('PATCH', `/v1/teams/${beta.id}/keys/${betaKey.body.id}`, { name: 'stolen' }),
    as('POST', `/v1/teams/${beta.id}/keys/${betaKey.body.id}/revoke`),
    as('POST', `/v1/teams/${beta.id}/keys/${betaKey.body.id}/rotate`),
    as('POST', `/v1/teams/${beta.id}/keys`, { name: 'planted' }),
    as('GET', `/v1/teams/${beta.id}/activity`),
    as('POST', `/v1/teams/${beta.id}/tokens`, { name: 'backdoor' }),
  ];
  for (const response of await Promise.all(attempts)) {
    t.equal(response.status, 404);
    t.equal(response.body.error.code, 'team_not_found');
  }
  const viaOwnTeam = await as('GET', `/v1/teams/${alpha.id}/keys/${betaKey.body.id}`);
  t.equal(viaOwnTeam.status, 404, "another team's key id under one's own team is not found");
  t.equal(viaOwnTeam.body.error.code, 'key_not_found');
  const key = await cp.request('GET', `/v1/teams/${beta.id}/keys/${betaKey.body.id}`, { token: beta.token });
  t.equal(key.body.name, 'beta-key', 'nothing changed');
  t.equal(key.body.status, 'active');
});

t.test('team tokens cannot use platform admin calls', async (t) => {
  for (const [method, path, body] of [
    ['POST', '/v1/teams', { name: 'gamma' }],
    ['GET', '/v1/teams'],
    ['GET', '/v1/activity'],
    ['POST', '/v1/pools', { name: 'p', exits: [] }],
    ['PATCH', '/v1/pools/p', { exits: [] }],
  ] as const) {
    const response = await cp.request(method, path, { token: alpha.token, body });
    t.equal(response.status, 403, `${method} ${path}`);
    t.equal(response.body.error.code, 'admin_required');
  }
});

t.test('the admin sees every team', async (t) => {
  const teams = await cp.request('GET', '/v1/teams');
  t.same(teams.body.data.map((team: any) => team.name).sort(), ['alpha', 'beta']);
  const key = await cp.request('GET', `/v1/teams/${beta.id}/keys/${betaKey.body.id}`);
  t.equal(key.status, 200);
});
