import t from 'tap';
import { continentOf, COUNTRIES, countryName, normalizeCountryCode } from '../../geo/countries.js';
import type { Exit } from '../../contract/node-api.js';
import { createExitSelector } from '../../geo/exit-selection.js';

const exit = (id: string, country: string): Exit => ({ id, country, url: `http://127.0.0.1:${id.length}` });
const pools = [
  { name: 'residential', exits: [exit('de-1', 'DE'), exit('de-2', 'DE'), exit('de-3', 'DE'), exit('us-1', 'US')] },
  { name: 'datacenter', exits: [exit('fr-1', 'FR')] },
];

function selector(now = () => 0) {
  const created = createExitSelector({ now, maxSessions: 3, failureCooldownMs: 1_000 });
  created.setPools(pools);
  return created;
}

t.test('the country list has every officially assigned ISO 3166-1 alpha-2 code', async (t) => {
  t.equal(COUNTRIES.length, 249);
  t.equal(normalizeCountryCode('de'), 'DE');
  t.equal(normalizeCountryCode('GB'), 'GB');
  t.equal(normalizeCountryCode('UK'), 'GB', 'UK is not an ISO code, but means GB to everyone');
  t.equal(normalizeCountryCode('uk'), 'GB');
  t.equal(normalizeCountryCode('XK'), undefined);
  t.equal(normalizeCountryCode('DEU'), undefined);
  t.equal(countryName('DE'), 'Germany');
  t.equal(continentOf('JP'), 'AS');
  t.equal(continentOf('AQ'), 'AN');
});

t.test('rotation spreads requests evenly over the exits of the country asked for', async (t) => {
  const picks = new Map<string, number>();
  const select = selector();
  for (let i = 0; i < 300; i++) {
    const picked = select.pickExit({ pools: null, country: 'DE' })!;
    picks.set(picked.id, (picks.get(picked.id) ?? 0) + 1);
  }
  t.same([...picks].sort(), [['de-1', 100], ['de-2', 100], ['de-3', 100]]);
});

t.test('pool grants limit the candidates', async (t) => {
  const select = selector();
  t.equal(select.pickExit({ pools: new Set(['datacenter']), country: 'DE' }), undefined, 'no German exit in the granted pool');
  t.equal(select.pickExit({ pools: new Set(['datacenter']), country: undefined })!.id, 'fr-1');
  t.equal(select.pickExit({ pools: null, pool: 'datacenter', country: 'FR' })!.id, 'fr-1');
});

t.test('a sticky session keeps its exit for its lifetime, then may move', async (t) => {
  let now = 0;
  const select = selector(() => now);
  const session = { owner: 'key_1', id: 's1', ttlMs: 60_000 };
  const first = select.pickExit({ pools: null, country: 'DE', session })!;
  for (let i = 0; i < 10; i++) t.equal(select.pickExit({ pools: null, country: 'DE', session })!.id, first.id);
  t.not(select.pickExit({ pools: null, country: 'DE', session: { ...session, owner: 'key_2' } })!.id, undefined);
  now = 61_000;
  select.pickExit({ pools: null, country: 'DE' });
  const after = select.pickExit({ pools: null, country: 'DE', session })!;
  t.ok(after.country === 'DE', 'a new pin after expiry, still in the country');
});

t.test('a failed exit is skipped, and a pinned session moves once and stays moved', async (t) => {
  let now = 0;
  const select = selector(() => now);
  const session = { owner: 'key_1', id: 's2', ttlMs: 600_000 };
  const pinned = select.pickExit({ pools: null, country: 'DE', session })!;
  select.markExitFailed(pinned.id);
  const moved = select.pickExit({ pools: null, country: 'DE', session })!;
  t.not(moved.id, pinned.id);
  now = 5_000;
  select.markExitHealthy(pinned.id);
  t.equal(select.pickExit({ pools: null, country: 'DE', session })!.id, moved.id, 'stays on the new exit');
  for (let i = 0; i < 6; i++) t.not(select.pickExit({ pools: null, country: 'DE', exclude: new Set([moved.id]) })!.id, moved.id, 'exclude is honoured');
});

t.test('when every exit of a country is cooling down, the longest-failed one is still tried', async (t) => {
  let now = 0;
  const select = selector(() => now);
  select.markExitFailed('de-1');
  now = 10;
  select.markExitFailed('de-2');
  now = 20;
  select.markExitFailed('de-3');
  t.equal(select.pickExit({ pools: null, country: 'DE' })!.id, 'de-1');
  t.equal(select.summary().find((entry) => entry.country === 'DE')!.healthy, 0);
});

t.test('sessions are bounded, dropped by owner, and survive a pool refresh only where their exit does', async (t) => {
  const select = selector();
  for (let i = 0; i < 5; i++) select.pickExit({ pools: null, country: 'DE', session: { owner: 'key_a', id: `s${i}`, ttlMs: 60_000 } });
  t.equal(select.sessionCount(), 3, 'bounded by maxSessions');
  t.equal(select.dropSessions('key_a'), 3);
  t.equal(select.sessionCount(), 0);
  const session = { owner: 'key_b', id: 's', ttlMs: 60_000 };
  const pinned = select.pickExit({ pools: null, country: 'DE', session })!;
  select.setPools([{ name: 'residential', exits: pools[0]!.exits.filter((candidate) => candidate.id !== pinned.id) }]);
  const moved = select.pickExit({ pools: null, country: 'DE', session })!;
  t.not(moved.id, pinned.id, 'an orphaned session moves to an exit that still exists');
  t.notOk(select.hasPool('datacenter'), 'the refreshed pools replace the old ones');
});

const placed = (id: string, country: string, city?: string, state?: string, asn?: number): Exit => ({
  ...exit(id, country),
  ...(city !== undefined && { city }),
  ...(state !== undefined && { state }),
  ...(asn !== undefined && { asn }),
});
const placedPools = [
  {
    name: 'residential',
    exits: [
      placed('be-1', 'DE', 'berlin', 'be', 3320),
      placed('be-2', 'DE', 'berlin', 'be', 3209),
      placed('by-1', 'DE', 'munich', 'by', 3320),
      placed('de-x', 'DE'),
      placed('ny-1', 'US', 'new_york', 'ny', 7922),
    ],
  },
  { name: 'mobile', exits: [placed('be-m', 'DE', 'berlin', 'be', 6805)] },
];

function placedSelector(now = () => 0) {
  const created = createExitSelector({ now, maxSessions: 100, failureCooldownMs: 1_000 });
  created.setPools(placedPools);
  return created;
}

/** The exits a request is served by over `times` picks. */
function picked(select: ReturnType<typeof placedSelector>, request: Parameters<ReturnType<typeof placedSelector>['pickExit']>[0], times = 12): string[] {
  const seen = new Set<string>();
  for (let i = 0; i < times; i++) {
    const exit = select.pickExit(request);
    if (exit !== undefined) seen.add(exit.id);
  }
  return [...seen].sort();
}

t.test('city, state and ASN select only the exits that carry them, alone and together', async (t) => {
  const select = placedSelector();
  t.same(picked(select, { pools: null, country: undefined, city: 'berlin' }), ['be-1', 'be-2', 'be-m']);
  t.same(picked(select, { pools: null, country: 'DE', state: 'by' }), ['by-1']);
  t.same(picked(select, { pools: null, country: undefined, asn: 3320 }), ['be-1', 'by-1']);
  t.same(picked(select, { pools: null, country: 'DE', city: 'berlin', asn: 3209 }), ['be-2']);
  t.same(picked(select, { pools: new Set(['mobile']), country: 'DE', city: 'berlin' }), ['be-m'], 'within the granted pools only');
  t.same(picked(select, { pools: null, pool: 'residential', country: undefined, city: 'berlin' }), ['be-1', 'be-2'], 'within the pool asked for');
  t.same(picked(select, { pools: null, country: 'DE' }), ['be-1', 'be-2', 'be-m', 'by-1', 'de-x'], 'an exit without a city serves requests that ask for none');
  t.equal(select.pickExit({ pools: null, country: 'US', city: 'berlin' }), undefined, 'a city in another country matches nothing');
  t.equal(select.pickExit({ pools: null, country: undefined, asn: 1 }), undefined);
});

t.test('rotation within a city is even, and candidate lists are rebuilt when pools change', async (t) => {
  const select = placedSelector();
  const counts = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const id = select.pickExit({ pools: null, country: 'DE', city: 'berlin' })!.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  t.same([...counts].sort(), [['be-1', 100], ['be-2', 100], ['be-m', 100]]);
  select.setPools([{ name: 'residential', exits: [placed('be-3', 'DE', 'berlin', 'be', 3320)] }]);
  t.same(picked(select, { pools: null, country: 'DE', city: 'berlin' }), ['be-3'], 'the cached Berlin list did not outlive the pools');
});

t.test('a sticky session holds its exit within its city, and moves to match when asked for another', async (t) => {
  const select = placedSelector();
  const session = { owner: 'key_1', id: 's1', ttlMs: 60_000 };
  const first = select.pickExit({ pools: null, country: undefined, city: 'berlin', session })!;
  t.equal(first.city, 'berlin');
  for (let i = 0; i < 10; i++) t.equal(select.pickExit({ pools: null, country: undefined, city: 'berlin', session })!.id, first.id);
  t.equal(select.pickExit({ pools: null, country: undefined, city: 'munich', session })!.id, 'by-1', 'moved to the city asked for');
  select.markExitFailed('by-1');
  t.equal(select.pickExit({ pools: null, country: undefined, city: 'munich', session })!.id, 'by-1', 'the only Munich exit is still tried rather than another city');
});

t.test('a selector knows whether any exit is configured at all', async (t) => {
  const select = createExitSelector();
  t.notOk(select.hasExits(), 'nothing yet');
  select.setPools([{ name: 'empty', exits: [] }]);
  t.notOk(select.hasExits(), 'a pool without exits is nothing to route through');
  select.setPools(placedPools);
  t.ok(select.hasExits());
});
