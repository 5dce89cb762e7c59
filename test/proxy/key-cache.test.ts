import t from 'tap';
import http from 'node:http';
import { generateApiKey, randomBase62 } from '../../lib/secret-format.js';
import { metricValue } from '../helpers/metrics.js';
import { bearer, proxyRequest } from '../helpers/proxy-client.js';
import { seedUsableKeys } from '../helpers/seed-keys.js';
import { startWorld } from '../helpers/world.js';

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
const registry = world.node.metrics.registry;
const verifyCalls = () => metricValue(registry, 'portcullis_proxy_auth_cache_total', { result: 'miss' });

t.test('10,000 random well-formed-looking keys cause no control-plane call', async (t) => {
  const before = await verifyCalls();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  t.teardown(() => agent.destroy());
  const statuses = new Map<number, number>();
  const keys = Array.from({ length: 10_000 }, () => `sk_live_${randomBase62(38)}`);
  for (let i = 0; i < keys.length; i += 200) {
    const batch = await Promise.all(keys.slice(i, i + 200).map((key) => proxyRequest(world.node.port, `${world.origin.url}/`, bearer(key), { agent })));
    for (const response of batch) statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  }
  t.same([...statuses], [[407, 10_000]], 'every one refused with 407');
  t.ok((await verifyCalls()) - before <= 3, `${(await verifyCalls()) - before} control-plane calls`);
});

t.test('concurrent first requests with one new key make one control-plane call', async (t) => {
  const { key } = await world.createKey();
  const before = await verifyCalls();
  const responses = await Promise.all(Array.from({ length: 50 }, () => proxyRequest(world.node.port, `${world.origin.url}/`, bearer(key))));
  t.ok(responses.every((response) => response.status === 200));
  t.equal((await verifyCalls()) - before, 1, 'one verify call');
  t.ok((await metricValue(registry, 'portcullis_proxy_auth_cache_total', { result: 'coalesced' })) >= 1, 'the rest were coalesced or hit the cache');
});

t.test('a cold node meeting 2,000 keys at once verifies them in batched calls and refuses none', async (t) => {
  const secrets = await seedUsableKeys(world.cp.adminDb, world.team.id, 2_000);
  const node = await world.startNode();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 500 });
  t.teardown(() => agent.destroy());
  const responses = await Promise.all(secrets.map((key) => proxyRequest(node.port, `${world.origin.url}/`, bearer(key), { agent })));
  const statuses = new Map<number, number>();
  for (const response of responses) statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  t.same([...statuses], [[200, 2_000]], 'every key served');
  const calls = await metricValue(node.metrics.registry, 'portcullis_proxy_verify_batch_keys_count');
  const keys = await metricValue(node.metrics.registry, 'portcullis_proxy_verify_batch_keys_sum');
  t.equal(keys, 2_000, 'each key asked about once');
  // Calls go out as soon as one of the node's few slots is free, so how many keys share a call
  // depends on how fast the control plane answers; under this load, several always do.
  t.ok(calls <= 1_000, `${calls} verify calls for 2,000 keys`);
});

t.test('an unknown key is remembered briefly: repeating it costs one call', async (t) => {
  const unknown = generateApiKey();
  const before = await verifyCalls();
  for (let i = 0; i < 20; i++) t.equal((await proxyRequest(world.node.port, `${world.origin.url}/`, bearer(unknown))).status, 407);
  t.equal((await verifyCalls()) - before, 1);
});

t.test('a flood of unknown keys with valid checksums is throttled, not forwarded at full rate', async (t) => {
  const node = await world.startNode({
    cache: { maxEntries: 1000, ttlMs: 60_000, negativeTtlMs: 10_000, maxNegativeEntries: 10_000, unknownPerSecond: 20, unknownPerSecondPerClient: 1_000, maxVerifyInFlight: 20 },
  });
  const calls = () => metricValue(node.metrics.registry, 'portcullis_proxy_auth_cache_total', { result: 'miss' });
  const started = performance.now();
  const responses = await Promise.all(Array.from({ length: 300 }, () => proxyRequest(node.port, `${world.origin.url}/`, bearer(generateApiKey()))));
  const seconds = (performance.now() - started) / 1000;
  const unavailable = responses.filter((response) => response.headers['x-portcullis-error'] === 'auth_unavailable');
  // The budget: a second's worth at once, as many again in flight before their answers
  // come back, then 20 a second for as long as the flood lasted (longer on a slow machine).
  const allowed = 20 + 20 + Math.ceil(20 * seconds);
  t.ok((await calls()) <= allowed, `${await calls()} calls for 300 unknown keys in ${seconds.toFixed(2)} s (budget ${allowed})`);
  t.ok(unavailable.every((response) => response.status === 503 && response.headers['retry-after'] === '1'), 'the excess answered 503 with Retry-After');
  t.ok(responses.every((response) => response.status === 407 || response.status === 503), 'never let through');
});

t.test("one address flooding made-up keys spends its own budget, not everyone else's", async (t) => {
  const node = await world.startNode({
    cache: { maxEntries: 1000, ttlMs: 60_000, negativeTtlMs: 10_000, maxNegativeEntries: 10_000, unknownPerSecond: 1_000, unknownPerSecondPerClient: 20, maxVerifyInFlight: 1_000 },
  });
  // Every 127/8 address is loopback: the flood comes from 127.0.0.2, everyone else from 127.0.0.1.
  const flooder = new http.Agent({ keepAlive: true, maxSockets: 50, localAddress: '127.0.0.2' });
  t.teardown(() => flooder.destroy());
  const started = performance.now();
  const flood = await Promise.all(Array.from({ length: 300 }, () => proxyRequest(node.port, `${world.origin.url}/`, bearer(generateApiKey()), { agent: flooder })));
  const seconds = (performance.now() - started) / 1000;
  const asked = flood.filter((response) => response.status !== 503).length;
  // Its budget: 20 at once, its 50 connections' lookups in flight, then 20 a second.
  const allowed = 20 + 50 + Math.ceil(20 * seconds);
  t.ok(asked <= allowed, `${asked} of 300 made-up keys from one address were looked up in ${seconds.toFixed(2)} s (budget ${allowed}); the rest got 503`);
  t.ok(flood.every((response) => response.status === 407 || response.status === 503), 'none let through');

  const { key } = await world.createKey();
  t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(key))).status, 200, 'a new real key from another address is served at once');
  t.equal((await proxyRequest(node.port, `${world.origin.url}/`, bearer(generateApiKey()))).headers['x-portcullis-error'], 'key_invalid', 'and its typos still get a plain 407');
});
