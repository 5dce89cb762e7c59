import http from 'node:http';
import tls from 'node:tls';
import type net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { finished } from 'node:stream';
import { drain } from '../../lib/drain.js';
import { endSocket } from '../../lib/http/end-socket.js';
import type { Logger } from '../../lib/logger.js';
import { Refusal, refusalParts, renderRefusal } from '../refusal.js';
import type { ClientAddresses } from './client-address.js';
import type { ConnectRequests } from './connect-requests.js';
import type { HttpRequests } from './http-requests.js';
import { readProxyHeader, type ProxyProtocolMode } from './proxy-protocol.js';

export interface ProxyServerOptions {
  host: string;
  port: number;
  httpRequests: HttpRequests;
  connectRequests: ConnectRequests;
  /** Counts a request too broken to reach a handler, or broken by a bug, by outcome code. */
  countRequest(outcome: string): void;
  /** Counts a CONNECT request broken by a bug. */
  countTunnel(outcome: string): void;
  timeouts: { requestHeadersMs: number; keepAliveMs: number };
  /** Whether each connection starts with a PROXY protocol header, and which versions. */
  proxyProtocol: ProxyProtocolMode;
  /** A second listener where clients reach the same proxy over TLS; no PROXY protocol there. */
  tls: { port: number; cert: Buffer; key: Buffer } | undefined;
  clientAddresses: ClientAddresses;
  logger: Logger;
}

/** The listening side of a node. */
export interface ProxyServer {
  /** Resolves with the bound ports: plain, and TLS when there is a TLS listener. */
  listen(): Promise<{ port: number; tlsPort: number | undefined }>;
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
const INTERNAL = new Refusal('internal');

/**
 * node:http's server with our handlers for plain requests and CONNECT. `Expect:
 * 100-continue` is answered by the request handler once the request is admitted, never
 * before. Every connection is tracked, tunnels included (the HTTP server lets go of a
 * socket once it is a tunnel), so that shutdown can end them all.
 */
export function createProxyServer({ host, port, httpRequests, connectRequests, countRequest, countTunnel, timeouts, proxyProtocol, tls: tlsOptions, clientAddresses, logger }: ProxyServerOptions): ProxyServer {
  const sockets = new Set<Socket>();
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
    countRequest(INTERNAL.code);
    if (response.headersSent || response.destroyed) return void response.destroy();
    const { status, headers, body } = refusalParts(INTERNAL);
    response.writeHead(status, { ...headers, connection: 'close' }).end(body);
  }

  function failTunnel(error: unknown, socket: Socket): void {
    logger.error({ err: error }, 'unexpected error while handling a CONNECT request');
    countTunnel(INTERNAL.code);
    // Once anything went out (a tunnel's 200, a pipelined response) an answer would be garbage.
    if (socket.bytesWritten > 0) return void socket.destroy();
    endSocket(socket, renderRefusal(INTERNAL, false));
  }

  function serve(request: http.IncomingMessage, response: http.ServerResponse, expectsContinue: boolean): void {
    activeRequests++;
    response.once('close', () => activeRequests--);
    lastResponse.set(request.socket, response);
    closeWithConnection(request.socket, response);
    try {
      const handling = httpRequests.handle(request, response, expectsContinue);
      if (handling !== undefined) handling.catch((error: unknown) => failRequest(error, response));
    } catch (error) {
      failRequest(error, response);
    }
  }

  async function tunnel(request: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
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
  }

  const server = http.createServer({ requestTimeout: 0, headersTimeout: timeouts.requestHeadersMs, keepAliveTimeout: timeouts.keepAliveMs });
  server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => serve(request, response, false));
  // With a listener here Node no longer answers `Expect: 100-continue` by itself: the client
  // is told to send its body only once it has been admitted.
  server.on('checkContinue', (request: http.IncomingMessage, response: http.ServerResponse) => serve(request, response, true));
  server.on('connect', (request: http.IncomingMessage, socket: Socket, head: Buffer) => {
    tunnel(request, socket, head).catch((error: unknown) => failTunnel(error, socket));
  });
  // node:http's own connection handler, which starts parsing requests: with PROXY protocol
  // it runs only once the header has been read off the connection.
  const startHttp = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const serveHttp = (socket: Socket) => {
    for (const listener of startHttp) listener.call(server, socket);
  };
  async function serveAfterProxyHeader(socket: Socket, mode: Exclude<ProxyProtocolMode, 'off'>): Promise<void> {
    const header = await readProxyHeader(socket, mode, timeouts.requestHeadersMs);
    if (header === undefined) {
      // No header, a malformed or late one: not from the balancer, and nothing to answer.
      if (!socket.destroyed) countRequest(BAD_REQUEST.code);
      return void socket.destroy();
    }
    if (socket.destroyed) return;
    if (header.source !== undefined) clientAddresses.set(socket, header.source);
    serveHttp(socket);
  }
  function track(socket: Socket): void {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A client socket's errors are the client's business; the handlers hear of them as 'close'.
    socket.on('error', () => socket.destroy());
  }
  server.on('connection', (socket: Socket) => {
    track(socket);
    if (proxyProtocol === 'off') serveHttp(socket);
    else serveAfterProxyHeader(socket, proxyProtocol).catch(() => socket.destroy());
  });

  // TLS is taken off by a TLS server; the decrypted connection is served like any other.
  const tlsServer =
    tlsOptions === undefined
      ? undefined
      : tls.createServer({ cert: tlsOptions.cert, key: tlsOptions.key, handshakeTimeout: timeouts.requestHeadersMs, allowHalfOpen: false });
  // The TCP connections under TLS ones: ended at shutdown, counted through their TLS sockets.
  const tlsTransports = new Set<Socket>();
  tlsServer?.on('connection', (socket: Socket) => {
    tlsTransports.add(socket);
    socket.once('close', () => tlsTransports.delete(socket));
    socket.on('error', () => socket.destroy());
  });
  tlsServer?.on('secureConnection', (socket: tls.TLSSocket) => {
    track(socket);
    serveHttp(socket);
  });
  // A failed handshake (a plain-HTTP client, a distrusting one, a timeout) ends the connection.
  tlsServer?.on('tlsClientError', (_error: Error, socket: tls.TLSSocket) => socket.destroy());

  function listenOn(listener: net.Server, onPort: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host, port: onPort, backlog: LISTEN_BACKLOG }, () => {
        listener.off('error', reject);
        resolve((listener.address() as AddressInfo).port);
      });
    });
  }
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    countRequest(BAD_REQUEST.code);
    const rendered = renderRefusal(BAD_REQUEST, false);
    endSocket(socket, error.code === 'HPE_HEADER_OVERFLOW' ? rendered.replace('400 Bad Request', '431 Request Header Fields Too Large') : rendered);
  });

  return {
    async listen() {
      const bound = await listenOn(server, port);
      const tlsPort = tlsServer === undefined ? undefined : await listenOn(tlsServer, tlsOptions!.port);
      return { port: bound, tlsPort };
    },
    connections: () => sockets.size,
    async close(deadlineMs) {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      const closingTls = new Promise<void>((resolve) => (tlsServer === undefined ? resolve() : tlsServer.close(() => resolve())));
      server.closeIdleConnections();
      await drain(() => activeRequests === 0 && connectRequests.open() === 0, deadlineMs, () => server.closeIdleConnections());
      for (const socket of sockets) socket.destroy();
      for (const socket of tlsTransports) socket.destroy();
      await Promise.all([closing, closingTls]);
    },
  };
}
