import type http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { finished } from 'node:stream';
import type { Counter } from 'prom-client';
import { Server } from 'proxy-chain';
import { drain } from '../../lib/drain.js';
import { endSocket } from '../../lib/http/end-socket.js';
import type { Logger } from '../../lib/logger.js';
import { Refusal, refusalParts, renderRefusal } from '../refusal.js';
import type { ConnectRequests } from './connect-requests.js';
import type { HttpRequests } from './http-requests.js';

export interface ProxyServerOptions {
  host: string;
  port: number;
  httpRequests: HttpRequests;
  connectRequests: ConnectRequests;
  /** Requests by outcome code (for requests too broken to reach a handler). */
  requests: Counter<'outcome'>;
  /** Tunnels by outcome code (for CONNECT requests a bug broke). */
  tunnels: Counter<'outcome'>;
  timeouts: { requestHeadersMs: number; keepAliveMs: number };
  logger: Logger;
}

/** The listening side of a node: proxy-chain's server with our handlers. */
export interface ProxyServer {
  listen(): Promise<number>;
  /** Client connections open now (tunnels, keep-alive and in-flight requests). */
  connections(): number;
  /** Stops accepting, lets open requests and tunnels finish up to `deadlineMs`, then closes the rest. */
  close(deadlineMs: number): Promise<void>;
}

const INTERNAL = new Refusal('internal');

export function createProxyServer({ host, port, httpRequests, connectRequests, requests, tunnels, timeouts, logger }: ProxyServerOptions): ProxyServer {
  let activeRequests = 0;
  // The latest response on each connection: a CONNECT pipelined behind requests waits for it.
  const lastResponse = new WeakMap<Socket, http.ServerResponse>();
  // Responses waiting for earlier ones on their connection (pipelining), per connection.
  const queuedOn = new WeakMap<Socket, Set<http.ServerResponse>>();

  /**
   * Node never closes a response still queued behind another when the connection dies, so
   * whatever waits for its 'close' (the request count, a concurrency slot, the upstream
   * request) would wait for ever: such responses are closed with their connection.
   */
  function closeWithConnection(socket: Socket, response: http.ServerResponse): void {
    if (response.socket !== null) return;
    let queued = queuedOn.get(socket);
    if (queued === undefined) {
      const responses = new Set<http.ServerResponse>();
      queuedOn.set(socket, (queued = responses));
      socket.once('close', () => {
        for (const orphan of responses) if (orphan.socket === null) orphan.emit('close');
        responses.clear();
      });
    }
    queued.add(response);
    response.once('close', () => queued.delete(response));
  }

  /** Whatever a handler throws is a bug: the client gets 500 `internal`, never a dead node. */
  function failRequest(error: unknown, response: http.ServerResponse): void {
    logger.error({ err: error }, 'unexpected error while handling a request');
    requests.inc({ outcome: INTERNAL.code });
    if (response.headersSent || response.destroyed) return void response.destroy();
    const { status, headers, body } = refusalParts(INTERNAL);
    response.writeHead(status, { ...headers, connection: 'close' }).end(body);
  }

  function failTunnel(error: unknown, socket: Socket): void {
    logger.error({ err: error }, 'unexpected error while handling a CONNECT request');
    tunnels.inc({ outcome: INTERNAL.code });
    // Once anything went out (a tunnel's 200, a pipelined response) an answer would be garbage.
    if (socket.bytesWritten > 0) return void socket.destroy();
    endSocket(socket, renderRefusal(INTERNAL, false));
  }

  async function serve(request: http.IncomingMessage, response: http.ServerResponse, expectsContinue: boolean): Promise<void> {
    activeRequests++;
    response.once('close', () => activeRequests--);
    lastResponse.set(request.socket, response);
    closeWithConnection(request.socket, response);
    try {
      await httpRequests.handle(request, response, expectsContinue);
    } catch (error) {
      failRequest(error, response);
    }
  }

  class PortcullisServer extends Server {
    override async onRequest(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
      await serve(request, response, false);
    }

    override async onConnect(request: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
      try {
        // Node hands over the socket as soon as it reads the CONNECT line; answers to requests
        // pipelined before it must go out first, in order.
        const previous = lastResponse.get(socket);
        if (previous !== undefined && !previous.writableFinished) {
          await new Promise((resolve) => finished(previous, resolve));
          // Node armed its keep-alive timeout when that response finished: not for a tunnel.
          socket.setTimeout(0);
        }
        if (socket.destroyed) return;
        await connectRequests.handle(request, socket, head);
      } catch (error) {
        failTunnel(error, socket);
      }
    }

    override onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
      if (error.code === 'ECONNRESET' || !socket.writable) return;
      const refusal = new Refusal('bad_request');
      requests.inc({ outcome: refusal.code });
      const rendered = renderRefusal(refusal, false);
      endSocket(socket, error.code === 'HPE_HEADER_OVERFLOW' ? rendered.replace('400 Bad Request', '431 Request Header Fields Too Large') : rendered);
    }
  }

  const server = new PortcullisServer({ host, port, authRealm: 'portcullis' });
  server.server.headersTimeout = timeouts.requestHeadersMs;
  server.server.requestTimeout = 0;
  server.server.keepAliveTimeout = timeouts.keepAliveMs;
  // With a listener here Node no longer answers `Expect: 100-continue` by itself: the client
  // is told to send its body only once it has been admitted.
  server.server.on('checkContinue', (request: http.IncomingMessage, response: http.ServerResponse) => void serve(request, response, true));

  return {
    async listen() {
      await server.listen();
      return (server.server.address() as AddressInfo).port;
    },
    connections: () => server.connections.size,
    async close(deadlineMs) {
      const closing = new Promise<void>((resolve) => server.server.close(() => resolve()));
      server.server.closeIdleConnections();
      await drain(() => activeRequests === 0 && connectRequests.open() === 0, deadlineMs, () => server.server.closeIdleConnections());
      server.closeConnections();
      await closing;
    },
  };
}
