import net from 'node:net';
import { FORBIDDEN_DESTINATION, ForbiddenDestinationError, isDnsFailure } from '../../lib/http/destination-policy.js';
import type { RequestTarget } from '../../lib/http/request-target.js';
import { createUpstreamReader, splice, type ReadBuffers, type UpstreamReader } from '../../lib/http/splice.js';
import type { ExitAttempts } from './exit-attempts.js';
import type { ExitTransport } from './exit-transport.js';

export type TunnelOutcome = 'ok' | 'exit_failed' | 'destination_forbidden' | 'dns_error' | 'client_aborted';

export interface TunnelOptions {
  connectTimeoutMs: number;
  /** A tunnel with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  lookup: net.LookupFunction;
  /** Where each tunnel's read buffer for its upstream comes from. */
  readBuffers: ReadBuffers;
}

/** What the caller hears of a tunnel that opened: once established, once closed. */
export interface TunnelHooks {
  /** The client has its 200 (or SOCKS reply); metering starts here (the `head` is payload). */
  established(): void;
  closed(): void;
}

/** The most an exit may send before the end of its CONNECT reply's headers. */
const MAX_REPLY_HEAD = 16 * 1024;

/** The reply for a key without rate limits, the common case, encoded once. */
const PLAIN_ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');

/** A CONNECT's 200 reply, with headers of ours (X-RateLimit-*) given as [name, value, ...]. */
export function connectEstablished(extraHeaders: string[]): string | Uint8Array {
  if (extraHeaders.length === 0) return PLAIN_ESTABLISHED;
  let reply = 'HTTP/1.1 200 Connection Established\r\n';
  for (let i = 0; i < extraHeaders.length; i += 2) reply += `${extraHeaders[i]}: ${extraHeaders[i + 1]}\r\n`;
  return `${reply}\r\n`;
}

const timeoutError = () => Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' });

/** A TCP connection, or the reason there is none within the timeout. */
function connect(options: net.NetConnectOpts, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(options);
    const timer = setTimeout(() => socket.destroy(timeoutError()), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', fail);
      resolve(socket);
    });
  });
}

/** The exit answered, but could not open the tunnel; `exitError` is its `X-Portcullis-Exit-Error`. */
class ExitRefusedError extends Error {
  override readonly name = 'ExitRefusedError';
  readonly code = 'EEXITREFUSED';
  constructor(
    message: string,
    readonly exitError: string | undefined,
  ) {
    super(message);
  }
}

/**
 * CONNECT through an upstream exit, spoken on a raw socket (an HTTP client per tunnel costs
 * more than the one reply it reads); resolves with the socket and any bytes the exit sent
 * after its 200.
 */
async function openThroughExit(target: RequestTarget, transport: ExitTransport, reader: UpstreamReader, options: TunnelOptions): Promise<{ socket: net.Socket; head: Buffer }> {
  const socket = await connect({ host: transport.host, port: transport.port, onread: reader.onread }, options.connectTimeoutMs);
  const credentials = transport.proxyAuthorization === undefined ? '' : `Proxy-Authorization: ${transport.proxyAuthorization}\r\n`;
  socket.write(`CONNECT ${target.authority} HTTP/1.1\r\nHost: ${target.authority}\r\n${credentials}\r\n`);
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(timeoutError()), options.connectTimeoutMs);
    const stopListening = () => {
      clearTimeout(timer);
      reader.hold();
      socket.removeListener('error', fail);
      socket.removeListener('close', closed);
    };
    const fail = (error: Error) => {
      stopListening();
      socket.destroy();
      reject(error);
    };
    // An exit that hangs up or babbles is an exit failure: another exit may do better.
    const broken = (message: string) => Object.assign(new Error(message), { code: 'ECONNRESET' });
    const closed = () => fail(broken('the exit closed the connection before answering'));
    reader.hold((chunk) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (received.length > MAX_REPLY_HEAD) fail(broken('the exit answered with an endless head'));
        return true;
      }
      const head = received.toString('latin1', 0, end);
      if (/^HTTP\/1\.[01] 200(?:[ \r]|$)/.test(head)) {
        stopListening();
        resolve({ socket, head: received.subarray(end + 4) });
        // What follows waits for the splice.
        return false;
      }
      const exitError = /\r\nx-portcullis-exit-error:[ \t]*([a-z_]+)/i.exec(head)?.[1];
      const status = head.slice(0, head.indexOf('\r\n'));
      fail(exitError === 'destination_forbidden' ? new ForbiddenDestinationError('the exit refused a private destination') : new ExitRefusedError(`exit answered ${status}`, exitError));
      return false;
    });
    socket.once('error', fail);
    socket.once('close', closed);
  });
}

/**
 * Opens a CONNECT tunnel for `client`. Exits that cannot be reached are retried while
 * nothing has been sent to the client; an exit that reached out but was refused by the
 * target is not (another exit would meet the same target). On success the client gets
 * `200 Connection Established` and bytes flow both ways until either side closes or the
 * tunnel idles out. `established` is what the client hears once the tunnel is open: a
 * CONNECT's 200 (`connectEstablished`) or a SOCKS5 success reply.
 */
export async function openTunnel(
  client: net.Socket,
  head: Buffer,
  target: RequestTarget,
  attempts: ExitAttempts,
  options: TunnelOptions,
  established: string | Uint8Array,
  hooks: TunnelHooks,
): Promise<TunnelOutcome> {
  for (;;) {
    const transport = attempts.next();
    if (transport === undefined) return 'exit_failed';
    let upstream: net.Socket;
    let upstreamHead: Buffer | undefined;
    const reader = createUpstreamReader(options.readBuffers);
    try {
      if (transport.isDirect) {
        upstream = await connect({ host: target.hostname, port: target.port, lookup: options.lookup, onread: reader.onread }, options.connectTimeoutMs);
      } else {
        ({ socket: upstream, head: upstreamHead } = await openThroughExit(target, transport, reader, options));
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === FORBIDDEN_DESTINATION) return 'destination_forbidden';
      if (client.destroyed) return 'client_aborted';
      // The exit reached out and the target's name did not resolve, or the target refused:
      // another exit would meet the same target.
      if (error instanceof ExitRefusedError) return error.exitError === 'dns_error' ? 'dns_error' : 'exit_failed';
      if (transport.isDirect) return isDnsFailure(code) ? 'dns_error' : 'exit_failed';
      attempts.failed(transport);
      continue;
    }
    if (client.destroyed) {
      upstream.destroy();
      return 'client_aborted';
    }
    client.write(established);
    hooks.established();
    splice(client, upstream, { head, upstreamHead, reader, idleTimeoutMs: options.idleTimeoutMs, onClose: hooks.closed });
    return 'ok';
  }
}
