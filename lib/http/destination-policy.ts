import dns from 'node:dns';
import net from 'node:net';

/**
 * Which destinations a node refuses to reach: loopback, private, link-local (cloud
 * metadata lives there), carrier-grade NAT, multicast, reserved ranges, and SMTP. Checked
 * against the resolved addresses, so a public name pointing at 127.0.0.1 is refused too,
 * and the connection is made to the checked address (no second lookup to rebind).
 */
const FORBIDDEN_IPV4 = new net.BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  FORBIDDEN_IPV4.addSubnet(network, prefix, 'ipv4');
}

/**
 * The eight 16-bit groups of an IPv6 address in any spelling (`::` anywhere, a dotted IPv4
 * tail, a zone), or undefined if it is not one.
 */
function ipv6Groups(address: string): number[] | undefined {
  const zone = address.indexOf('%');
  const bare = zone < 0 ? address : address.slice(0, zone);
  if (!net.isIPv6(bare)) return undefined;
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const elided = bare.indexOf('::');
  if (elided < 0) return parse(bare);
  const head = parse(bare.slice(0, elided));
  const tail = parse(bare.slice(elided + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

const ipv4Of = (high: number, low: number) => `${high >>> 8}.${high & 0xff}.${low >>> 8}.${low & 0xff}`;
const isForbiddenIpv4 = (address: string) => FORBIDDEN_IPV4.check(address, 'ipv4');

/**
 * An IPv6 destination is reachable only if it is global unicast (2000::/3) outside the
 * ranges reserved for documentation and benchmarks, or if it stands for an IPv4 address
 * that is itself allowed. Every form that carries an IPv4 address is judged by that
 * address: IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16) and
 * Teredo (2001::/32, whose server and obfuscated client addresses both route there).
 * Anything else outside 2000::/3 is refused: the unspecified and loopback addresses,
 * IPv4-compatible and IPv4-translated forms (::/96, ::ffff:0:0:0/96), unique-local,
 * link-local, site-local, multicast, discard-only, local-use NAT64 and unassigned space.
 */
function isForbiddenIpv6(groups: number[]): boolean {
  const [g0, g1, g2, g3, , , g6, g7] = groups as [number, number, number, number, number, number, number, number];
  const startsWith = (prefix: number[]) => prefix.every((value, i) => groups[i] === value);
  if (startsWith([0, 0, 0, 0, 0, 0xffff]) || startsWith([0x64, 0xff9b, 0, 0, 0, 0])) return isForbiddenIpv4(ipv4Of(g6, g7));
  if ((g0 & 0xe000) !== 0x2000) return true;
  if (g0 === 0x2002) return isForbiddenIpv4(ipv4Of(g1, g2));
  if (g0 === 0x2001 && g1 === 0) return isForbiddenIpv4(ipv4Of(g2, g3)) || isForbiddenIpv4(ipv4Of(~g6 & 0xffff, ~g7 & 0xffff));
  // Documentation (2001:db8::/32, 3fff::/20), benchmarking (2001:2::/48), ORCHID (2001:10::/28).
  if (g0 === 0x2001 && (g1 === 0xdb8 || (g1 === 2 && g2 === 0) || (g1 & 0xfff0) === 0x10)) return true;
  return g0 === 0x3fff && (g1 & 0xf000) === 0;
}

function isForbiddenAddress(address: string): boolean {
  if (net.isIPv4(address)) return isForbiddenIpv4(address);
  const groups = ipv6Groups(address);
  return groups === undefined || isForbiddenIpv6(groups);
}

/** Names made only of what an IPv4 address may be written with: digits, dots, hex. */
const NUMBER_LIKE = /^[0-9a-fx.]+$/i;

/**
 * The host as an HTTP client connects to it. WHATWG URL parsing (undici's) reads `127.1`,
 * `2130706433` and `0x7f.0.0.1` as the IPv4 address they spell and then connects without a
 * lookup, so such a host is checked as that address, not as a name.
 */
function canonicalHost(host: string): string {
  if (!NUMBER_LIKE.test(host)) return host;
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return host;
  }
}

export interface DestinationPolicy {
  /** Cheap check on the name and port alone, before any DNS work. */
  forbids(hostname: string, port: number): boolean;
  /** A `lookup` for net/http that refuses forbidden resolved addresses. */
  lookup: net.LookupFunction;
}

const FORBIDDEN_PORTS = new Set([25]);
const LOCAL_NAMES = /(^|\.)(localhost|localdomain|internal|local)\.?$/i;

/** The `code` of the error a refused lookup fails with, as net and http pass it on. */
export const FORBIDDEN_DESTINATION = 'EDESTINATIONFORBIDDEN';

export class ForbiddenDestinationError extends Error {
  readonly code = FORBIDDEN_DESTINATION;
}

/**
 * Whether a lookup failed because the name does not resolve (ENOTFOUND), or the resolver
 * could not say (EAI_AGAIN): the client's URL is at fault, not the exit, so trying another
 * exit would only fail again. Exits report it as `dns_error`.
 */
export function isDnsFailure(code: string | undefined): boolean {
  return code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

export function createDestinationPolicy({ allowPrivate }: { allowPrivate: boolean }): DestinationPolicy {
  const lookup: net.LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error !== null) return callback(error, '', 4);
      const list = addresses as dns.LookupAddress[];
      const allowed = allowPrivate ? list : list.filter((entry) => !isForbiddenAddress(entry.address));
      if (allowed.length === 0) return callback(new ForbiddenDestinationError(`${hostname} resolves to a forbidden address`), '', 4);
      if ((options as dns.LookupOptions).all === true) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
  return {
    forbids(hostname, port) {
      if (FORBIDDEN_PORTS.has(port)) return true;
      if (allowPrivate) return false;
      const bare = canonicalHost(hostname.startsWith('[') ? hostname.slice(1, -1) : hostname);
      return net.isIP(bare) !== 0 ? isForbiddenAddress(bare) : LOCAL_NAMES.test(bare);
    },
    lookup,
  };
}
