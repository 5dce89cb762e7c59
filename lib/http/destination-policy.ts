import dns from 'node:dns';
import net from 'node:net';

/**
 * Which destinations a node refuses to reach: loopback, private, link-local (cloud
 * metadata lives there), carrier-grade NAT, multicast, reserved ranges, and SMTP. Checked
 * against the resolved addresses, so a public name pointing at 127.0.0.1 is refused too,
 * and the connection is made to the checked address (no second lookup to rebind).
 */
const FORBIDDEN = new net.BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  ['64:ff9b:1::', 48],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, 'ipv6');
}

const FORBIDDEN_PORTS = new Set([25]);
const LOCAL_NAMES = /(^|\.)(localhost|localdomain|internal|local)\.?$/i;

function isForbiddenAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return FORBIDDEN.check(address, 'ipv4');
  if (family !== 6) return true;
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are checked as IPv4.
  const mapped = /^(?:0*:)*(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return FORBIDDEN.check(mapped, 'ipv4');
  return FORBIDDEN.check(address, 'ipv6');
}

export interface DestinationPolicy {
  /** Cheap check on the name and port alone, before any DNS work. */
  forbids(hostname: string, port: number): boolean;
  /** A `lookup` for net/http that refuses forbidden resolved addresses. */
  lookup: net.LookupFunction;
}

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
      const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
      return net.isIP(bare) !== 0 ? isForbiddenAddress(bare) : LOCAL_NAMES.test(bare);
    },
    lookup,
  };
}
