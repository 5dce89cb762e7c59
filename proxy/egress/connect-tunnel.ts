import http from 'node:http';
import net from 'node:net';
import { FORBIDDEN_DESTINATION, ForbiddenDestinationError, isDnsFailure } from '../../lib/http/destination-policy.js';
import type { ByteMeter } from '../limits/usage-meter.js';
import type { ExitAttempts } from './exit-attempts.js';
import type { ExitTransport } from './exit-transport.js';
import type { RequestTarget } from '../../lib/http/request-target.js';
import { splice } from '../../lib/http/splice.js';

export type TunnelOutcome = 'ok' | 'exit_failed' | 'destination_forbidden' | 'dns_error' | 'client_aborted';

export interface TunnelOptions {
  connectTimeoutMs: number;
  /** A tunnel with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  lookup: net.LookupFunction;
}

/** The 200 reply, with headers of ours (X-RateLimit-*) given as [name, value, ...]. */
function established(extraHeaders: string[]): string {
  let reply = 'HTTP/1.1 200 Connection Established\r\n';
  for (let i = 0; i < extraHeaders.length; i += 2) reply += `${extraHeaders[i]}: ${extraHeaders[i + 1]}\r\n`;
  return `${reply}\r\n`;
}

function openDirect(target: RequestTarget, options: TunnelOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.hostname, port: target.port, lookup: options.lookup });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), options.connectTimeoutMs);
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
  readonly code = 'EEXITREFUSED';
  constructor(
    message: string,
    readonly exitError: string | undefined,
  ) {
    super(message);
  }
}

/** CONNECT through an upstream exit; resolves with the socket once the exit says 200. */
function openThroughExit(target: RequestTarget, transport: ExitTransport, options: TunnelOptions): Promise<{ socket: net.Socket; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: target.authority };
    if (transport.proxyAuthorization !== undefined) headers['proxy-authorization'] = transport.proxyAuthorization;
    const connect = http.request({ host: transport.host, port: transport.port, method: 'CONNECT', path: target.authority, headers, agent: false });
    const timer = setTimeout(() => connect.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), options.connectTimeoutMs);
    connect.once('connect', (response, socket, head) => {
      clearTimeout(timer);
      if (response.statusCode !== 200) {
        socket.destroy();
        const exitError = response.headers['x-portcullis-exit-error'];
        const refusal = Array.isArray(exitError) ? exitError[0] : exitError;
        reject(
          refusal === 'destination_forbidden'
            ? new ForbiddenDestinationError('the exit refused a private destination')
            : new ExitRefusedError(`exit answered ${response.statusCode}`, refusal),
        );
        return;
      }
      resolve({ socket, head });
    });
    connect.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    connect.end();
  });
}

/**
 * Opens a CONNECT tunnel for `client`. Exits that cannot be reached are retried while
 * nothing has been sent to the client; an exit that reached out but was refused by the
 * target is not (another exit would meet the same target). On success the client gets
 * `200 Connection Established` and bytes flow both ways until either side closes or
 * the tunnel idles out; `meter` hears of its payload bytes as they flow, `onClose` once at the end.
 */
export async function openTunnel(
  client: net.Socket,
  head: Buffer,
  target: RequestTarget,
  attempts: ExitAttempts,
  options: TunnelOptions,
  extraHeaders: string[],
  meter: ByteMeter,
  onClose: () => void,
): Promise<TunnelOutcome> {
  for (;;) {
    const transport = attempts.next();
    if (transport === undefined) return 'exit_failed';
    let upstream: net.Socket;
    let upstreamHead: Buffer | undefined;
    try {
      if (transport.isDirect) {
        upstream = await openDirect(target, options);
      } else {
        ({ socket: upstream, head: upstreamHead } = await openThroughExit(target, transport, options));
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
    client.write(established(extraHeaders));
    meter(head.length, upstreamHead?.length ?? 0);
    client.on('data', (chunk: Buffer) => meter(chunk.length, 0));
    upstream.on('data', (chunk: Buffer) => meter(0, chunk.length));
    splice(client, upstream, { head, upstreamHead, idleTimeoutMs: options.idleTimeoutMs, onClose });
    return 'ok';
  }
}
