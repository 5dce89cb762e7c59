import t, { type Test } from 'tap';
import { createInProcessBus } from '../../lib/feed/in-process-bus.js';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/deadline.js';
import { metricValue } from '../helpers/metrics.js';
import { basic, proxyConnect, proxyRequest, type ProxyResponse } from '../helpers/proxy-client.js';
import { startTestProxyNode } from '../helpers/proxy-node.js';
import { startWorld } from '../helpers/world.js';

/**
 * A name that does not resolve is the client's problem, not the exit's: 502 dns_error, as
 * RFC 9209 names it, whether the exit or the node itself looked it up, and no other exit
 * is tried. Names under `.invalid` never resolve (RFC 6761).
 */

const world = await startWorld({ exitCountries: ['DE', 'DE'] });
t.teardown(() => world.close());
const { key } = await world.createKey();
const UNRESOLVABLE = 'no-such-host.invalid';

const created = await world.cp.request('POST', '/v1/pools', { body: { name: 'own', exits: [{ country: 'FR', url: 'direct' }] } });
if (created.status !== 201) throw new Error(`pool: ${JSON.stringify(created.body)}`);
await waitFor(async () => (await proxyRequest(world.node.port, `${world.origin.url}/`, basic('acme-pool-own', key))).status === 200, {
  what: 'the node to egress through the new direct pool',
});

const exitFailures = () => metricValue(world.node.metrics.registry, 'portcullis_proxy_exit_failures_total');

function assertDnsError(t: Test, status: number, headers: Record<string, unknown>): void {
  t.equal(status, 502);
  t.equal(headers['x-portcullis-error'], 'dns_error');
  t.equal(headers['proxy-status'], 'portcullis; error=dns_error; details="dns_error"');
}

/** A CONNECT answer's head as lower-cased header names and values. */
function headersOf(head: string): Record<string, string> {
  return Object.fromEntries(head.split('\r\n').slice(1).map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
}

t.test('through an exit, plain HTTP to a name that does not resolve → 502 dns_error, one exit asked', async (t) => {
  const requestsBefore = world.exits.reduce((sum, exit) => sum + exit.stats().requests, 0);
  const failuresBefore = await exitFailures();
  const response: ProxyResponse = await proxyRequest(world.node.port, `http://${UNRESOLVABLE}/`, basic('acme-country-de', key));
  assertDnsError(t, response.status, response.headers);
  t.match(response.body, /^dns_error: .*does not resolve/);
  t.equal(world.exits.reduce((sum, exit) => sum + exit.stats().requests, 0), requestsBefore + 1, 'no other exit was tried');
  t.equal(await exitFailures(), failuresBefore, 'and the exit is not marked as failed');
});

t.test('through an exit, CONNECT to a name that does not resolve → 502 dns_error', async (t) => {
  const failuresBefore = await exitFailures();
  const tunnel = await proxyConnect(world.node.port, `${UNRESOLVABLE}:443`, basic('acme-country-de', key));
  tunnel.socket.destroy();
  assertDnsError(t, tunnel.status, headersOf(tunnel.head));
  t.equal(await exitFailures(), failuresBefore, 'no exit is marked as failed');
});

t.test('egressing directly, plain HTTP and CONNECT to a name that does not resolve → 502 dns_error', async (t) => {
  const failuresBefore = await exitFailures();
  const response = await proxyRequest(world.node.port, `http://${UNRESOLVABLE}/`, basic('acme-pool-own', key));
  assertDnsError(t, response.status, response.headers);
  const tunnel = await proxyConnect(world.node.port, `${UNRESOLVABLE}:443`, basic('acme-pool-own', key));
  tunnel.socket.destroy();
  assertDnsError(t, tunnel.status, headersOf(tunnel.head));
  t.equal(await exitFailures(), failuresBefore, 'the direct exit is not marked as failed');
});

t.test('a target that refuses connections is still exit_failed, not dns_error', async (t) => {
  const response = await proxyRequest(world.node.port, 'http://127.0.0.1:1/', basic('acme-pool-own', key));
  t.equal(response.headers['x-portcullis-error'], 'exit_failed');
});

t.test('a deployment with no pool at all says so when it refuses', async (t) => {
  const bus = createInProcessBus();
  const empty = await startTestControlPlane({ publishers: new Map([['local', bus.publisher()]]) });
  t.teardown(() => empty.close());
  const team = await empty.createTeam();
  const fresh = await empty.request('POST', `/v1/teams/${team.id}/keys`, { body: { name: 'first' } });
  const node = await startTestProxyNode({ controlPlaneUrl: empty.url, nodeToken: empty.nodeToken, subscriber: bus.subscriber() });
  t.teardown(() => node.close());
  const response = await proxyRequest(node.port, `${world.origin.url}/`, basic('acme', fresh.body.key));
  t.equal(response.status, 503);
  t.equal(response.headers['x-portcullis-error'], 'no_exit');
  t.match(response.body, /^no_exit: No pool of exits is configured on this deployment yet/);
  t.notMatch(response.body, /another country/);
});
