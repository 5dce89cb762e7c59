import t from 'tap';
import { readControlPlaneConfig } from '../../control-plane/config.js';
import { parseRedisTarget } from '../../lib/redis-target.js';
import { readProxyConfig } from '../../proxy/config.js';

const node = { NODE_TOKEN: 'n'.repeat(30), REDIS_URL: 'redis://127.0.0.1:6379', CONTROL_PLANE_URL: 'http://cp:8080' };

t.test('CONTROL_PLANE_URL lists one control plane or several, each checked', async (t) => {
  t.same(readProxyConfig(node).controlPlaneUrls, ['http://cp:8080']);
  t.same(readProxyConfig({ ...node, CONTROL_PLANE_URL: 'http://a:8080, https://b:8443' }).controlPlaneUrls, ['http://a:8080', 'https://b:8443']);
  t.throws(() => readProxyConfig({ ...node, CONTROL_PLANE_URL: 'http://a:8080,ftp://b' }), /CONTROL_PLANE_URL must use http: or https:, got "ftp:"/);
  t.throws(() => readProxyConfig({ ...node, CONTROL_PLANE_URL: 'http://a:8080,,http://b' }), /CONTROL_PLANE_URL has an empty entry/);
  t.throws(() => readProxyConfig({ ...node, CONTROL_PLANE_URL: 'http://a:8080,http://a:8080' }), /CONTROL_PLANE_URL lists "http:\/\/a:8080" twice/);
});

t.test('REDIS_URL takes a server or a Sentinel-managed primary, with clear errors', async (t) => {
  t.same(parseRedisTarget('redis+sentinel://10.0.0.1:26379,sentinel-b,[::1]:26380/mymaster'), {
    target: {
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'sentinel-b', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'mymaster',
      password: undefined,
      sentinelPassword: undefined,
      db: 0,
    },
  });
  t.match(parseRedisTarget('redis+sentinel://:s3cret@h1:26379/mymaster/2?sentinelPassword=other'), {
    target: { password: 's3cret', sentinelPassword: 'other', db: 2, name: 'mymaster' },
  });
  t.equal(readProxyConfig({ ...node, REDIS_URL: 'redis+sentinel://h1:26379,h2:26379/mymaster' }).redisUrl, 'redis+sentinel://h1:26379,h2:26379/mymaster');
  t.throws(() => readProxyConfig({ ...node, REDIS_URL: 'redis+sentinel://h1:26379,h2:26379' }), /REDIS_URL must look like redis\+sentinel:\/\/host1:26379,host2:26379\/mymaster/);
  t.throws(() => readProxyConfig({ ...node, REDIS_URL: 'redis+sentinel://h1:99999/mymaster' }), /REDIS_URL has a sentinel address that is not host:port: "h1:99999"/);
  t.throws(() => readProxyConfig({ ...node, REDIS_URL: 'http://h1:6379' }), /REDIS_URL must be a redis:\/\/, rediss:\/\/ or redis\+sentinel:\/\/ URL/);
  const error = t.throws(() => readProxyConfig({ ...node, REDIS_URL: 'redis+sentinel://:s3cret@h1/m?sentinelPassword=hush&x=1' })) as Error;
  t.match(error.message, /unknown parameter "x"/);
  t.notMatch(error.message, /s3cret|hush/, 'passwords never appear in the message');
});

t.test("REGIONS keeps a Sentinel URL's host list together", async (t) => {
  const config = readControlPlaneConfig(
    { NODE_TOKEN: 'n'.repeat(30), REGIONS: 'us=redis+sentinel://a:26379,b:26379/us-primary,eu=redis://eu:6379' },
    { dataDir: 'data', requireNodeToken: true },
  );
  t.same([...config.regions], [
    ['us', 'redis+sentinel://a:26379,b:26379/us-primary'],
    ['eu', 'redis://eu:6379'],
  ]);
  t.throws(() => readControlPlaneConfig({ NODE_TOKEN: 'n'.repeat(30), REGIONS: 'us=redis+sentinel://a:26379' }, { dataDir: 'data', requireNodeToken: true }), /REGIONS entry "us" must look like/);
});

t.test('WORKERS is a count of processes, one or more', async (t) => {
  t.ok(readProxyConfig(node).workers >= 1, 'one per CPU by default');
  t.equal(readProxyConfig({ ...node, WORKERS: '1' }).workers, 1);
  t.throws(() => readProxyConfig({ ...node, WORKERS: '0' }), /WORKERS must be between 1 and 1024, got 0/);
});
