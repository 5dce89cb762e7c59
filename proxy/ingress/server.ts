import type http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Counter } from 'prom-client';
import { Server } from 'proxy-chain';
import { drain } from '../../lib/drain.js';
import { Refusal, renderRefusal } from '../refusal.js';
import type { ConnectRequests } from './connect-requests.js';
import type { HttpRequests } from './http-requests.js';

export interface ProxyServerOptions {
  host: string;
  port: number;
  httpRequests: HttpRequests;
  connectRequests: ConnectRequests;
  /** Requests by outcome code (for requests too broken to reach a handler). */
  requests: Counter<'outcome'>;
  timeouts: { requestHeadersMs: number; keepAliveMs: number };
}

/** The listening side of a node: proxy-chain's server with our handlers. */
export interface ProxyServer {
  listen(): Promise<number>;
  /** Client connections open now (tunnels, keep-alive and in-flight requests). */
  connections(): number;
  /** Stops accepting, lets open requests and tunnels finish up to `deadlineMs`, then closes the rest. */
  close(deadlineMs: number): Promise<void>;
}

export function createProxyServer({ host, port, httpRequests, connectRequests, requests, timeouts }: ProxyServerOptions): ProxyServer {
  let activeRequests = 0;

  class PortcullisServer extends Server {
    override async onRequest(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
      activeRequests++;
      response.once('close', () => activeRequests--);
      await httpRequests.handle(request, response);
    }

    override async onConnect(request: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
      await connectRequests.handle(request, socket, head);
    }

    override onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
      if (error.code === 'ECONNRESET' || !socket.writable) return;
      const refusal = new Refusal('bad_request');
      requests.inc({ outcome: refusal.code });
      const rendered = renderRefusal(refusal, false);
      socket.end(error.code === 'HPE_HEADER_OVERFLOW' ? rendered.replace('400 Bad Request', '431 Request Header Fields Too Large') : rendered);
    }
  }

  const server = new PortcullisServer({ host, port, authRealm: 'portcullis' });
  server.server.headersTimeout = timeouts.requestHeadersMs;
  server.server.requestTimeout = 0;
  server.server.keepAliveTimeout = timeouts.keepAliveMs;

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
