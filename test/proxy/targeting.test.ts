import t, { type Test } from 'tap';
import { basic, bearer, proxyConnect, proxyRequest, type ProxyResponse } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

/**
 * City, state and ASN targeting against real stand-in exits, each placed differently in
 * the pool: every part selects only the exits that carry it, by username or header.
 */

const world = await startWorld({
  exitPlacements: [
    { country: 'DE', city: 'berlin', state: 'be', asn: 3320 },
    { country: 'DE', city: 'berlin', state: 'be', asn: 3209 },
    { country: 'DE', city: 'munich', state: 'by', asn: 3320 },
    { country: 'US', city: 'new_york', state: 'ny', asn: 7922 },
    { country: 'GB', city: 'london' },
    { country: 'US' },
  ],
});
t.teardown(() => world.close());
const { key } = await world.createKey();

const exitFor = world.exitFor;

/** The exits that carried eight requests: rotation covers every candidate in that many. */
async function exitsFor(headers: Record<string, string>): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) seen.add(await exitFor(headers));
  return [...seen].sort();
}

function assertRefusal(t: Test, response: ProxyResponse, status: number, code: string, hint: RegExp): void {
  t.equal(response.status, status, `status ${status}`);
  t.equal(response.headers['x-portcullis-error'], code);
  t.match(response.body, new RegExp(`^${code}: .+\\n$`), 'one line');
  t.match(response.body, hint, 'the hint names what is at fault');
}

t.test('each targeting part in the username selects only the exits that carry it', async (t) => {
  t.same(await exitsFor(basic('acme-city-berlin', key)), ['exit-de-0', 'exit-de-1'], 'city');
  t.same(await exitsFor(basic('acme-state-by', key)), ['exit-de-2'], 'state');
  t.same(await exitsFor(basic('acme-asn-3320', key)), ['exit-de-0', 'exit-de-2'], 'asn');
  t.same(await exitsFor(basic('acme-city-berlin-asn-3209', key)), ['exit-de-1'], 'city and asn together');
  t.same(await exitsFor(basic('acme-country-us-city-new_york', key)), ['exit-us-3'], 'country and a two-word city');
  t.same(await exitsFor(basic('acme-country-us', key)), ['exit-us-3', 'exit-us-5'], 'without a city asked for, exits with and without one serve');
  t.same(await exitsFor(basic('ACME-City-London', key)), ['exit-gb-4'], 'part names and city values in any case');
});

t.test('the Proxy-City, Proxy-State and Proxy-ASN headers select the same way, win over the username and are stripped', async (t) => {
  t.same(await exitsFor({ ...bearer(key), 'proxy-city': 'berlin' }), ['exit-de-0', 'exit-de-1']);
  t.same(await exitsFor({ ...bearer(key), 'proxy-state': 'BY' }), ['exit-de-2']);
  t.same(await exitsFor({ ...bearer(key), 'proxy-asn': '3209' }), ['exit-de-1']);
  t.same(await exitsFor({ ...basic('acme-city-munich', key), 'proxy-city': 'berlin' }), ['exit-de-0', 'exit-de-1'], 'the header wins');
  const forwarded = world.origin.seen.at(-1)!.headers;
  t.same(Object.keys(forwarded).filter((name) => name.startsWith('proxy-')), [], 'no Proxy-* header reached the target');
});

t.test('uk is accepted as GB in the username, the header and a key grant', async (t) => {
  t.equal(await exitFor(basic('acme-country-uk', key)), 'exit-gb-4');
  t.equal(await exitFor({ ...bearer(key), 'proxy-country': 'UK' }), 'exit-gb-4');
  const created = await world.cp.request('POST', `/v1/teams/${world.team.id}/keys`, { body: { name: 'uk-only', countries: ['uk'] } });
  t.same(created.body.countries, ['GB'], 'a grant of uk is stored as GB');
  t.equal(await exitFor(basic('acme-country-uk', created.body.key)), 'exit-gb-4');
  const elsewhere = await proxyRequest(world.node.port, `${world.origin.url}/`, basic('acme-country-de', created.body.key));
  t.equal(elsewhere.headers['x-portcullis-error'], 'country_forbidden', 'and grants GB only');
});

t.test('a targeting part the node does not know answers 400 targeting_unsupported naming it', async (t) => {
  for (const [user, part] of [
    ['acme-country-de-zip-10115', 'zip'],
    ['acme-city-berlin-continent-eu', 'continent'],
    ['user-acme-session-s1-os-android', 'os'],
  ] as const) {
    const response = await proxyRequest(world.node.port, `${world.origin.url}/`, basic(user, key));
    assertRefusal(t, response, 400, 'targeting_unsupported', new RegExp(`"${part}"`));
    t.equal(response.headers['proxy-status'], 'portcullis; error=http_request_error; details="targeting_unsupported"');
  }
  const tunnel = await proxyConnect(world.node.port, `127.0.0.1:${world.origin.port}`, basic('acme-country-de-zip-10115', key));
  t.equal(tunnel.status, 400);
  t.match(tunnel.head, /X-Portcullis-Error: targeting_unsupported/);
  tunnel.socket.destroy();
  // Control characters and non-ASCII (é arrives as two bytes) never reach the hint.
  const hostile = await proxyRequest(world.node.port, `${world.origin.url}/`, basic('acme-country-de-zi\r\np\u00e9', key));
  assertRefusal(t, hostile, 400, 'targeting_unsupported', /"zi\?\?p\?\?"/);
});

t.test('the leading label is not read, however many words it has', async (t) => {
  t.match(await exitFor(basic('user-acme-corp-country-de', key)), /^exit-de-/);
  t.ok(await exitFor(basic('my-scraper', key)), 'a label alone, with a dash');
  t.match(await exitFor(basic('country-us-city-new_york', key)), 'exit-us-3', 'no label at all');
});

t.test('malformed targeting answers 400 bad_request naming the part', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [basic('acme-country-de-city', key), /"city" needs a value/],
    [basic('acme-city-berlin-city-munich', key), /"city" is given twice/],
    [basic('acme-country-de--city-berlin', key), /empty targeting part/],
    [{ ...bearer(key), 'proxy-city': 'New York' }, /city "New\?York" is malformed/],
    [{ ...bearer(key), 'proxy-state': 'bavaria' }, /state "bavaria" is malformed/],
    [{ ...bearer(key), 'proxy-asn': 'AS3320' }, /asn "AS3320" is malformed/],
    [basic('acme-asn-0', key), /asn "0" is malformed/],
    [basic('acme-asn-4294967296', key), /asn "4294967296" is malformed/],
    [{ ...bearer(key), 'proxy-session': 's1', 'proxy-sesstime': '0' }, /sesstime is in minutes/],
  ];
  for (const [headers, hint] of cases) {
    assertRefusal(t, await proxyRequest(world.node.port, `${world.origin.url}/`, headers), 400, 'bad_request', hint);
  }
});

t.test('a city, state or ASN no exit carries answers 503 no_exit naming what was asked for', async (t) => {
  assertRefusal(t, await proxyRequest(world.node.port, `${world.origin.url}/`, basic('acme-city-paris', key)), 503, 'no_exit', /for city paris in the pools/);
  assertRefusal(t, await proxyRequest(world.node.port, `${world.origin.url}/`, basic('acme-country-de-asn-7922', key)), 503, 'no_exit', /for country DE, asn 7922 in/);
  assertRefusal(t, await proxyRequest(world.node.port, `${world.origin.url}/`, { ...bearer(key), 'proxy-state': 'ca' }), 503, 'no_exit', /for state ca in/);
});

t.test('a sticky session holds its exit within the city asked for', async (t) => {
  const berlin = basic('acme-city-berlin-session-s1', key);
  const first = await exitFor(berlin);
  t.ok(['exit-de-0', 'exit-de-1'].includes(first), 'pinned to a Berlin exit');
  for (let i = 0; i < 6; i++) t.equal(await exitFor(berlin), first, 'and kept');
  const others = new Set<string>();
  for (let i = 2; i < 8; i++) others.add(await exitFor(basic(`acme-city-berlin-session-s${i}`, key)));
  t.same([...others].filter((exit) => exit !== 'exit-de-0' && exit !== 'exit-de-1'), [], 'every Berlin session is in Berlin');
  t.equal(await exitFor(basic('acme-city-munich-session-s1', key)), 'exit-de-2', 'the same session id asking for another city moves there');
});
