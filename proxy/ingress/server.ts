import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { drain } from '../../lib/drain.js';
import type { Logger } from '../../lib/logger.js';
import { Refusal, renderRefusal } from '../refusal.js';
import type { ConnectRequests } from './connect-requests.js';
import type { HttpRequests } from './http-requests.js';

export interface ProxyServerOptions {
  host: string;
  port: number;
  httpRequests: HttpRequests;
  connectRequests: ConnectRequests;
  /** Counts a request too broken to reach a handler, by outcome code. */
  countOutcome(outcome: string): void;
  timeouts: { requestHeadersMs: number; keepAliveMs: number };
  logger: Logger;
}

/** The listening side of a node. */
export interface ProxyServer {
  listen(): Promise<number>;
  /** Client connections open now (tunnels, keep-alive and in-flight requests). */
  connections(): number;
  /** Stops accepting, lets open requests and tunnels finish up to `deadlineMs`, then closes the rest. */
  close(deadlineMs: number): Promise<void>;
}

/**
 * Accept queue length. Node's default (511) overflows when hundreds of clients connect at
 * once, and a dropped SYN costs the client a one-second retransmit: the p99 of a burst.
 */
const LISTEN_BACKLOG = 4096;
const BAD_REQUEST = new Refusal('bad_request');

/**
 * node:http's server with our handlers for plain requests and CONNECT. `Expect:
 * 100-continue` is answered by the request handler once the request is admitted, never
 * before. Every connection is tracked, tunnels included (the HTTP server lets go of a
 * socket once it is a tunnel), so that shutdown can end them all.
 */
export function createProxyServer({ host, port, httpRequests, connectRequests, countOutcome, timeouts, logger }: ProxyServerOptions): ProxyServer {
  const sockets = new Set<Socket>();
  let activeRequests = 0;

  /** Last resort for a bug in a handler: the client gets an error, the node lives on. */
  function fault(error: unknown, destroy: () => void): void {
    logger.error({ err: error }, 'unexpected error while proxying');
    destroy();
  }

  function onRequest(request: http.IncomingMessage, response: http.ServerResponse): void {
    activeRequests++;
    response.once('close', () => activeRequests--);
    try {
      const handling = httpRequests.handle(request, response);
      if (handling !== undefined) handling.catch((error: unknown) => fault(error, () => response.destroy()));
    } catch (error) {
      fault(error, () => response.destroy());
    }
  }

  const server = http.createServer({ requestTimeout: 0, headersTimeout: timeouts.requestHeadersMs, keepAliveTimeout: timeouts.keepAliveMs });
  server.on('request', onRequest);
  server.on('checkContinue', onRequest);
  server.on('connect', (request: http.IncomingMessage, socket: Socket, head: Buffer) => {
    try {
      const handling = connectRequests.handle(request, socket, head);
      if (handling !== undefined) handling.catch((error: unknown) => fault(error, () => socket.destroy()));
    } catch (error) {
      fault(error, () => socket.destroy());
    }
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // Errors of a client socket are the client's business; the handlers see them as 'close'.
    socket.on('error', () => socket.destroy());
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    countOutcome(BAD_REQUEST.code);
    const rendered = renderRefusal(BAD_REQUEST, false);
    socket.end(error.code === 'HPE_HEADER_OVERFLOW' ? rendered.replace('400 Bad Request', '431 Request Header Fields Too Large') : rendered);
  });

  return {
    listen: () =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    connections: () => sockets.size,
    async close(deadlineMs) {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await drain(() => activeRequests === 0 && connectRequests.open() === 0, deadlineMs, () => server.closeIdleConnections());
      for (const socket of sockets) socket.destroy();
      await closing;
    },
  };
}
