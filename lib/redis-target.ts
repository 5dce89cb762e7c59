/**
 * Where a region's Redis is: one server (`redis://`, `rediss://`), or a primary and its
 * replicas watched by Sentinel (`redis+sentinel://[:password@]host1:26379,host2:26379/mymaster[/db]`,
 * `?sentinelPassword=…` when the sentinels want one). With Sentinel, the client asks the
 * sentinels for the primary and asks again whenever it loses it, so a failover is a
 * reconnection like any other.
 */
export type RedisTarget =
  | { kind: 'server'; url: string }
  | {
      kind: 'sentinel';
      sentinels: { host: string; port: number }[];
      /** The name the sentinels monitor the primary under. */
      name: string;
      password: string | undefined;
      sentinelPassword: string | undefined;
      db: number;
    };

const SENTINEL_URL = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?@]+)\/([^/?]+)(?:\/(\d+))?\/?(?:\?(.*))?$/;
const SENTINEL_PORT = 26379;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/;

/** The target a URL names, or what is wrong with it (never repeating a password). */
export function parseRedisTarget(value: string): { target: RedisTarget } | { problem: string } {
  if (/^rediss?:\/\//.test(value)) {
    return URL.canParse(value) ? { target: { kind: 'server', url: value } } : { problem: 'is not a valid URL' };
  }
  if (!value.startsWith('redis+sentinel://')) return { problem: 'must be a redis://, rediss:// or redis+sentinel:// URL' };
  const match = SENTINEL_URL.exec(value);
  if (match === null) return { problem: 'must look like redis+sentinel://host1:26379,host2:26379/mymaster (the name the sentinels monitor)' };
  const [, , password, hostList, name, db, query] = match;
  const sentinels: { host: string; port: number }[] = [];
  for (const entry of hostList!.split(',')) {
    const hostPort = HOST_PORT.exec(entry.trim());
    const port = hostPort?.[2] === undefined ? SENTINEL_PORT : Number(hostPort[2]);
    if (hostPort === null || port < 1 || port > 65535) return { problem: `has a sentinel address that is not host:port: "${entry.trim()}"` };
    sentinels.push({ host: hostPort[1]!.replace(/^\[|\]$/g, ''), port });
  }
  const params = new URLSearchParams(query ?? '');
  for (const param of params.keys()) if (param !== 'sentinelPassword') return { problem: `has an unknown parameter "${param}" (only sentinelPassword is read)` };
  return {
    target: {
      kind: 'sentinel',
      sentinels,
      name: decodeURIComponent(name!),
      password: password === undefined || password === '' ? undefined : decodeURIComponent(password),
      sentinelPassword: params.get('sentinelPassword') ?? undefined,
      db: db === undefined ? 0 : Number(db),
    },
  };
}
