import { isIPv4, isIPv6, type Socket } from 'node:net';

/**
 * PROXY protocol v1 and v2 (haproxy.org/download/2.9/doc/proxy-protocol.txt), as a load
 * balancer in front of the nodes sends it: the first bytes of each connection say who the
 * client is. Only the balancer can send them (the node trusts the header only where the
 * setting says a balancer is in front), and a client cannot forge one inside its request.
 */

export type ProxyProtocolMode = 'off' | 'v1' | 'v2' | 'any';

export const PROXY_PROTOCOL_MODES: readonly ProxyProtocolMode[] = ['off', 'v1', 'v2', 'any'];

/** What a header said: the client's address, or none for LOCAL and UNKNOWN (a balancer's own health check). */
export type ProxyHeader = { length: number; source: string | undefined };

/** The parser's answer over the bytes received so far. */
export type ProxyHeaderParse = ProxyHeader | 'more' | 'invalid';

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest v1 header, CRLF included (the specification's bound). */
const V1_MAX_LENGTH = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_LENGTH = 16;
/** Addresses and TLVs a v2 header may carry here; balancers send a few hundred bytes at most. */
const V2_MAX_PAYLOAD = 4_096;
const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

/** Whether `buffer` so far agrees with the start of `prefix`. */
function startsLike(buffer: Buffer, prefix: Buffer): boolean {
  const length = Math.min(buffer.length, prefix.length);
  return buffer.subarray(0, length).equals(prefix.subarray(0, length));
}

function parseV1(buffer: Buffer): ProxyHeaderParse {
  const end = buffer.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return buffer.length >= V1_MAX_LENGTH ? 'invalid' : 'more';
  if (end + 2 > V1_MAX_LENGTH) return 'invalid';
  const words = buffer.toString('latin1', 0, end).split(' ');
  const length = end + 2;
  // UNKNOWN may be followed by anything; the connection's own address stands.
  if (words[1] === 'UNKNOWN') return { length, source: undefined };
  if (words.length !== 6) return 'invalid';
  const [, family, source, destination, sourcePort, destinationPort] = words as [string, string, string, string, string, string];
  const isAddress = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : undefined;
  if (isAddress === undefined || !isAddress(source) || !isAddress(destination)) return 'invalid';
  if (!PORT.test(sourcePort) || !PORT.test(destinationPort) || Number(sourcePort) > 65535 || Number(destinationPort) > 65535) return 'invalid';
  return { length, source };
}

function ipv6Text(bytes: Buffer): string {
  // An IPv4-mapped source is written as IPv4 clients of a dual-stack listener are: ::ffff:a.b.c.d.
  if (bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${[...bytes.subarray(12)].join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

function parseV2(buffer: Buffer): ProxyHeaderParse {
  if (buffer.length < V2_FIXED_LENGTH) return 'more';
  const versionAndCommand = buffer[12]!;
  if (versionAndCommand >> 4 !== 2) return 'invalid';
  const command = versionAndCommand & 0x0f;
  if (command > 1) return 'invalid';
  const payload = buffer.readUInt16BE(14);
  if (payload > V2_MAX_PAYLOAD) return 'invalid';
  const length = V2_FIXED_LENGTH + payload;
  if (buffer.length < length) return 'more';
  // LOCAL: the balancer speaking for itself (a health check).
  if (command === 0) return { length, source: undefined };
  const family = buffer[13]! >> 4;
  const transport = buffer[13]! & 0x0f;
  if (transport > 2) return 'invalid';
  const addresses = buffer.subarray(V2_FIXED_LENGTH, length);
  switch (family) {
    case 0x0: // AF_UNSPEC: nothing to say about the client.
    case 0x3: // AF_UNIX: no network address.
      return { length, source: undefined };
    case 0x1:
      return addresses.length < 12 ? 'invalid' : { length, source: [...addresses.subarray(0, 4)].join('.') };
    case 0x2:
      return addresses.length < 36 ? 'invalid' : { length, source: ipv6Text(addresses.subarray(0, 16)) };
    default:
      return 'invalid';
  }
}

/** Reads a header from the bytes received so far; `more` until there are enough to decide. */
export function parseProxyHeader(buffer: Buffer, mode: Exclude<ProxyProtocolMode, 'off'>): ProxyHeaderParse {
  if (buffer.length === 0) return 'more';
  const isV1 = mode !== 'v2' && startsLike(buffer, V1_PREFIX);
  const isV2 = mode !== 'v1' && startsLike(buffer, V2_SIGNATURE);
  if (!isV1 && !isV2) return 'invalid';
  if (isV1) return buffer.length < V1_PREFIX.length ? 'more' : parseV1(buffer);
  return buffer.length < V2_SIGNATURE.length ? 'more' : parseV2(buffer);
}

/**
 * Reads the header at the start of a connection and leaves what follows it unread for the
 * HTTP server. Resolves with the header, or undefined when it is missing, malformed, late
 * (past `timeoutMs`) or the connection ended first: the caller closes the connection.
 */
export function readProxyHeader(socket: Socket, mode: Exclude<ProxyProtocolMode, 'off'>, timeoutMs: number): Promise<ProxyHeader | undefined> {
  return new Promise((resolve) => {
    let received: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    function finish(header: ProxyHeader | undefined): void {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('close', onClose);
      if (header !== undefined && received.length > header.length) socket.unshift(received.subarray(header.length));
      resolve(header);
    }
    function onReadable(): void {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
        const parsed = parseProxyHeader(received, mode);
        if (parsed === 'more') continue;
        return finish(parsed === 'invalid' ? undefined : parsed);
      }
    }
    const onClose = () => finish(undefined);
    socket.on('readable', onReadable);
    socket.once('close', onClose);
  });
}
