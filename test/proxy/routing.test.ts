import t from 'tap';
import { bearer, basic, proxyRequest } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

const world = await startWorld({ exitCountries: ['DE', 'DE', 'DE', 'US'] });
t.teardown(() => world.close());
const { key } = await world.createKey();

const exitFor = world.exitFor;

t.test('country routing only ever uses exits of that country', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) seen.add(await exitFor({ ...bearer(key), 'proxy-country': 'DE' }));
  t.same([...seen].sort(), ['exit-de-0', 'exit-de-1', 'exit-de-2'], 'rotates over every German exit');
  t.equal(await exitFor({ ...bearer(key), 'proxy-country': 'us' }), 'exit-us-3');
});

t.test('a sticky session keeps its exit, then moves when that exit dies and stays moved', async (t) => {
  const session = basic('c-country-de-session-s1-sesstime-10', key);
  const first = await exitFor(session);
  for (let i = 0; i < 5; i++) t.equal(await exitFor(session), first, 'same exit while the session lives');
  const other = await exitFor(basic('c-country-de-session-s2', key));
  t.ok(other.startsWith('exit-de-'), 'another session may pick another exit');
  const pinned = world.exits.find((exit) => exit.id === first)!;
  await pinned.close();
  const moved = await exitFor(session);
  t.not(moved, first, 'moved to another exit');
  t.ok(moved.startsWith('exit-de-'), 'of the same country');
  for (let i = 0; i < 3; i++) t.equal(await exitFor(session), moved, 'and stays there');
});

t.test('an exit that refuses connections is retried on another exit before answering', async (t) => {
  let failures = 0;
  for (let i = 0; i < 9; i++) {
    const response = await proxyRequest(world.node.port, `${world.origin.url}/retry`, { ...bearer(key), 'proxy-country': 'DE' });
    if (response.status !== 200) failures++;
  }
  t.equal(failures, 0, 'no request failed although one German exit is down');
});
