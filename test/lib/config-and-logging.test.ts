import t from 'tap';
import { Writable } from 'node:stream';
import { readControlPlaneConfig } from '../../control-plane/config.js';
import { readExitConfig } from '../../exit/config.js';
import { ConfigError } from '../../lib/env.js';
import { createLogger } from '../../lib/logger.js';
import { generateApiKey, generateToken, isWellFormedApiKey, isWellFormedToken } from '../../lib/secret-format.js';
import { readProxyConfig } from '../../proxy/config.js';

t.test('bad settings fail at start with a message naming every bad variable', async (t) => {
  const error = t.throws(() =>
    readProxyConfig({ PORT: 'eighty', STALENESS_BOUND_MS: '-5', FAIL_OPEN: 'maybe', CONTROL_PLANE_URL: 'ftp://x', NODE_TOKEN: 'x'.repeat(30) }),
  ) as ConfigError;
  t.type(error, ConfigError);
  for (const variable of ['PORT', 'STALENESS_BOUND_MS', 'FAIL_OPEN', 'CONTROL_PLANE_URL', 'REDIS_URL']) t.match(error.message, variable);
  t.throws(() => readControlPlaneConfig({ REGIONS: 'us=http://nope' }, { dataDir: 'data', requireNodeToken: true }), /REGIONS.*NODE_TOKEN|NODE_TOKEN[\s\S]*REGIONS/);
  t.throws(() => readExitConfig({ COUNTRY: 'XX' }), /COUNTRY must be an ISO 3166-1 alpha-2 code/);
  t.equal(readExitConfig({ COUNTRY: 'uk', EXIT_TOKEN: 'e'.repeat(16) }).country, 'GB', 'UK is read as GB, as everywhere');
  t.throws(() => readExitConfig({ COUNTRY: 'DE' }), /EXIT_TOKEN is required/, 'an exit never starts as an open proxy');
  t.throws(() => readExitConfig({ COUNTRY: 'DE', EXIT_TOKEN: 'short' }), /EXIT_TOKEN must be 16 to 256 characters/);
  t.equal(readExitConfig({ COUNTRY: 'DE', EXIT_TOKEN: 'e'.repeat(16) }).token, 'e'.repeat(16));
  const config = readControlPlaneConfig({ NODE_TOKEN: 'n'.repeat(30), REGIONS: 'us=redis://127.0.0.1:1,eu=redis://127.0.0.1:2' }, { dataDir: 'data', requireNodeToken: true });
  t.same([...config.regions.keys()], ['us', 'eu']);
});

t.test('PUBLIC_PROXY_URL is a scheme, host and port, or unset', async (t) => {
  const context = { dataDir: 'data', requireNodeToken: false };
  t.equal(readControlPlaneConfig({}, context).publicProxyUrl, undefined, 'unset by default: the all-in-one start fills in its own node');
  t.equal(readControlPlaneConfig({ PUBLIC_PROXY_URL: 'http://proxy.example.com:8000/' }, context).publicProxyUrl, 'http://proxy.example.com:8000');
  t.throws(() => readControlPlaneConfig({ PUBLIC_PROXY_URL: 'socks5://proxy.example.com:1080' }, context), /PUBLIC_PROXY_URL must use http: or https:/);
  t.throws(() => readControlPlaneConfig({ PUBLIC_PROXY_URL: 'http://user:pw@proxy.example.com:8000' }, context), /PUBLIC_PROXY_URL must be a scheme, host and port only/);
});

t.test('logs never carry keys, tokens or credentials', async (t) => {
  let output = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      output += chunk;
      done();
    },
  });
  const logger = createLogger({ level: 'info', name: 'test', destination: sink });
  const key = generateApiKey();
  logger.info({ key, token: 'pc_tok_secret', req: { headers: { 'proxy-authorization': `Bearer ${key}`, authorization: 'Bearer pc_tok_secret' } } }, 'something happened');
  t.notMatch(output, key);
  t.notMatch(output, 'pc_tok_secret');
  t.match(output, '[redacted]');
});

t.test('keys and tokens carry a checksum that catches typos', async (t) => {
  const key = generateApiKey();
  t.ok(isWellFormedApiKey(key));
  t.notOk(isWellFormedApiKey(key.slice(0, -1) + (key.endsWith('a') ? 'b' : 'a')));
  t.notOk(isWellFormedApiKey(`${key}x`));
  t.ok(isWellFormedToken(generateToken()));
  t.notOk(isWellFormedToken(key));
});
