import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * Client address ranges, as keys' `allowedClientCidrs` carry them: parsed and written in one
 * canonical form by the control plane, turned into a matcher once per list by a node.
 */

export interface Cidr {
  family: 'ipv4' | 'ipv6';
  /** The network address, host bits cleared, in canonical form. */
  network: string;
  prefix: number;
}

/** The longest text a CIDR can have: a full IPv6 address with an embedded IPv4 one and `/128`. */
export const MAX_CIDR_LENGTH = 49;
const PREFIX = /^(?:0|[1-9][0-9]{0,2})$/;

function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

/** 16 bytes of an IPv6 address Node accepts; the URL parser expands an embedded IPv4 part to hex. */
function ipv6Bytes(address: string): number[] {
  const canonical = new URL(`http://[${address}]`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const groupsOf = (part: string) => (part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16)));
  const before = groupsOf(head);
  const after = tail === undefined ? [] : groupsOf(tail);
  const groups = [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
  return groups.flatMap((group) => [group >> 8, group & 0xff]);
}

function masked(bytes: number[], prefix: number): number[] {
  return bytes.map((byte, index) => {
    const bits = Math.min(8, Math.max(0, prefix - index * 8));
    return byte & ((0xff << (8 - bits)) & 0xff);
  });
}

function formatIpv6(bytes: number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // The URL parser writes IPv6 the RFC 5952 way: lower case, the longest zero run as `::`.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

const isMappedIpv4 = (bytes: number[]) => bytes.slice(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff;

/**
 * Reads `10.0.0.0/8`, `2001:db8::/32`, or an address alone (one host). Host bits are cleared
 * (`10.1.2.3/8` is `10.0.0.0/8`), IPv6 is written the RFC 5952 way, and an IPv4-mapped IPv6
 * range (`::ffff:10.0.0.0/104`) becomes the IPv4 range it stands for, which is how a node
 * compares mapped client addresses. Undefined for anything else, zone ids included.
 */
export function parseCidr(text: string): Cidr | undefined {
  if (text.length > MAX_CIDR_LENGTH) return undefined;
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  if (prefixText !== undefined && !PREFIX.test(prefixText)) return undefined;
  if (isIPv4(address)) {
    const prefix = prefixText === undefined ? 32 : Number(prefixText);
    if (prefix > 32) return undefined;
    return { family: 'ipv4', network: masked(ipv4Bytes(address), prefix).join('.'), prefix };
  }
  if (!isIPv6(address) || address.includes('%')) return undefined;
  const prefix = prefixText === undefined ? 128 : Number(prefixText);
  if (prefix > 128) return undefined;
  const bytes = masked(ipv6Bytes(address), prefix);
  if (prefix >= 96 && isMappedIpv4(bytes)) return { family: 'ipv4', network: bytes.slice(12).join('.'), prefix: prefix - 96 };
  return { family: 'ipv6', network: formatIpv6(bytes), prefix };
}

export const formatCidr = ({ network, prefix }: Cidr): string => `${network}/${prefix}`;

/** Whether a client address is in a list of ranges; built once per list, asked once per request. */
export interface ClientAllowlist {
  allows(address: string | undefined): boolean;
}

const MAPPED_PREFIX = '::ffff:';
/** Client addresses whose answer a list remembers; past this it starts afresh. */
const REMEMBERED_ADDRESSES = 4_096;

/** A matcher for canonical CIDRs; ones that do not parse (a newer control plane's) match nothing. */
export function createClientAllowlist(cidrs: readonly string[]): ClientAllowlist {
  const list = new BlockList();
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    if (cidr !== undefined) list.addSubnet(cidr.network, cidr.prefix, cidr.family);
  }
  function check(address: string): boolean {
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; they match IPv4 ranges.
    if (address.startsWith(MAPPED_PREFIX) && isIPv4(address.slice(MAPPED_PREFIX.length))) return list.check(address.slice(MAPPED_PREFIX.length), 'ipv4');
    if (isIPv4(address)) return list.check(address, 'ipv4');
    return isIPv6(address) && list.check(address, 'ipv6');
  }
  // BlockList.check builds a SocketAddress per call (microseconds); a key is used from few
  // addresses, so each one's answer is remembered and the cached path stays a map lookup.
  const answers = new Map<string, boolean>();
  return {
    allows(address) {
      if (address === undefined || address === '') return false;
      let allowed = answers.get(address);
      if (allowed === undefined) {
        if (answers.size >= REMEMBERED_ADDRESSES) answers.clear();
        answers.set(address, (allowed = check(address)));
      }
      return allowed;
    },
  };
}
