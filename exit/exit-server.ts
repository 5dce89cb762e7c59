import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { drain } from '../lib/drain.js';
import { endSocket } from '../lib/http/end-socket.js';
import type { Logger } from '../lib/logger.js';
import { createDestinationPolicy, FORBIDDEN_DESTINATION, isDnsFailure } from '../lib/http/destination-policy.js';
import { forwardedRequestHeaders, forwardedResponseHeaders } from '../lib/http/headers.js';
import { parseAbsoluteHttpTarget, parseConnectTarget } from '../lib/http/request-target.js';
import { createReadBuffers, createUpstreamReader, splice } from '../lib/http/splice.js';
import { createExitCredential, credentialRequired } from './exit-credential.js';

/**
 * A stand-in residential exit for development, tests and benchmarks: an upstream HTTP
 * proxy that egresses directly and marks what it carried (`X-Portcullis-Exit` on the
 * request to the target, on the response and on the CONNECT reply), so a test can prove
 * which country and exit a request went through. Like a real residential exit, it resolves
 * the target's name itself (so DNS answers are the exit country's), and so it is the one
 * that must refuse names resolving into its own network: private destinations answer 403
 * with `X-Portcullis-Exit-Error: destination_forbidden`, which nodes pass on to the client.
 * A name that does not resolve answers 502 with `X-Portcullis-Exit-Error: dns_error`, which
 * nodes pass on too; any other failure names its socket error code.
 * It carries traffic only for those who present its token (see exit-credential.ts).
 */
export interface ExitServerOptions {
  id: string;
  country: string;
  /** The credential nodes must present, the password of the exit's URL in a pool. */
  token: string;
  /** Reach loopback and private addresses (development and tests only). */
  allowPrivateDestinations: boolean;
  host?: string;
  port?: number;
  logger: Logger;
  connectTimeoutMs?: number;
}

export interface ExitServer {
  id: string;
  country: string;
  port: number;
  /** Where it listens, for /healthz, /readyz and /metrics. */
  url: string;
  /** Its URL with its credential, as a pool lists it. */
  poolUrl: string;
  stats(): { requests: number; tunnels: number; openTunnels: number };
  /** Stops accepting, lets requests and tunnels finish for up to `deadlineMs`, then cuts the rest. */
  close(deadlineMs?: number): Promise<void>;
}

export async function createExitServer({
  id,
  country,
  token,
  allowPrivateDestinations,
  host = '127.0.0.1',
  port = 0,
  logger,
  connectTimeoutMs = 10_000,
}: ExitServerOptions): Promise<ExitServer> {
  const policy = createDestinationPolicy({ allowPrivate: allowPrivateDestinations });
  const credential = createExitCredential(token);
  const registry = new Registry();
  const requests = new Counter({ name: 'portcullis_exit_requests_total', help: 'Plain HTTP requests carried', registers: [registry] });
  const tunnels = new Counter({ name: 'portcullis_exit_tunnels_total', help: 'CONNECT tunnels opened', registers: [registry] });
  const openTunnels = new Gauge({ name: 'portcullis_exit_open_tunnels', help: 'CONNECT tunnels open now', registers: [registry] });
  const rejected = new Counter({ name: 'portcullis_exit_unauthorized_total', help: 'Requests and tunnels refused for want of the exit token', registers: [registry] });
  const upstreamErrors = new Counter({ name: 'portcullis_exit_upstream_errors_total', help: 'Targets that could not be reached', labelNames: ['code'] as const, registers: [registry] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 4096, scheduling: 'lifo' });
  const tunnelSockets = new Set<net.Socket>();
  const readBuffers = createReadBuffers();
  let requestCount = 0;
  let tunnelCount = 0;
  let activeRequests = 0;
  let closing = false;
  const marker = ['X-Portcullis-Exit', id, 'X-Portcullis-Exit-Country', country];

  function errorCodeOf(error: NodeJS.ErrnoException): string {
    if (error.code === FORBIDDEN_DESTINATION) return 'destination_forbidden';
    if (isDnsFailure(error.code)) return 'dns_error';
    return error.code ?? 'EUNKNOWN';
  }

  function failRequest(response: http.ServerResponse, code: string): void {
    upstreamErrors.inc({ code });
    if (response.headersSent) return void response.destroy();
    const status = code === 'destination_forbidden' ? 403 : 502;
    response.writeHead(status, { 'x-portcullis-exit': id, 'x-portcullis-exit-error': code, 'content-type': 'text/plain' });
    response.end(`exit ${id} could not reach the target: ${code}\n`);
  }

  function failTunnel(client: net.Socket, code: string): void {
    upstreamErrors.inc({ code });
    const status = code === 'destination_forbidden' ? '403 Forbidden' : '502 Bad Gateway';
    endSocket(client, `HTTP/1.1 ${status}\r\nX-Portcullis-Exit: ${id}\r\nX-Portcullis-Exit-Error: ${code}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }

  async function serveOwn(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    if (request.method === 'GET' && request.url === '/healthz') return void response.end('ok\n');
    // Not ready from the first moment of shutdown, while open requests and tunnels drain.
    if (request.method === 'GET' && request.url === '/readyz') return void response.writeHead(closing ? 503 : 200).end(closing ? 'draining\n' : 'ok\n');
    if (request.method === 'GET' && request.url === '/metrics') {
      response.setHeader('content-type', registry.contentType);
      return void response.end(await registry.metrics());
    }
    response.writeHead(404).end();
  }

  function forward(request: http.IncomingMessage, response: http.ServerResponse, expectsContinue: boolean): void {
    if (request.url?.startsWith('/')) return void serveOwn(request, response);
    if (!credential.accepts(request.headers)) {
      rejected.inc();
      response.writeHead(407, { 'proxy-authenticate': 'Basic realm="portcullis-exit"', 'x-portcullis-exit': id, 'x-portcullis-exit-error': 'auth_required', connection: 'close' });
      return void response.end();
    }
    // Node does not answer `Expect: 100-continue` by itself here: only once the token is checked.
    if (expectsContinue) response.writeContinue();
    const target = parseAbsoluteHttpTarget(request.url);
    if (target === undefined) return void response.writeHead(400, { 'content-type': 'text/plain' }).end('absolute http:// URL required\n');
    requestCount++;
    requests.inc();
    activeRequests++;
    response.once('close', () => activeRequests--);
    if (policy.forbids(target.hostname, target.port)) {
      request.resume();
      return failRequest(response, 'destination_forbidden');
    }
    const headers = forwardedRequestHeaders(request.rawHeaders, target.authority, false);
    headers.push('X-Portcullis-Exit', id);
    const upstream = http.request({
      host: target.hostname,
      port: target.port,
      method: request.method,
      path: target.path,
      headers: headers as unknown as http.OutgoingHttpHeaders,
      setHost: false,
      agent,
      lookup: policy.lookup,
      timeout: connectTimeoutMs,
    });
    upstream.on('response', (upstreamResponse) => {
      // The reason phrase means nothing (RFC 9112 §4) and may hold what Node refuses to write.
      try {
        response.writeHead(upstreamResponse.statusCode ?? 502, [...forwardedResponseHeaders(upstreamResponse.rawHeaders), ...marker]);
      } catch {
        // A status Node reads but will not write (under 100): the target failed to answer HTTP.
        upstream.destroy();
        return failRequest(response, 'invalid_response');
      }
      upstreamResponse.pipe(response);
      upstreamResponse.on('error', () => response.destroy());
    });
    upstream.on('timeout', () => upstream.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    upstream.on('error', (error: NodeJS.ErrnoException) => failRequest(response, errorCodeOf(error)));
    response.on('close', () => {
      if (!response.writableFinished) upstream.destroy();
    });
    request.pipe(upstream);
  }

  const server = http.createServer((request, response) => forward(request, response, false));
  server.on('checkContinue', (request: http.IncomingMessage, response: http.ServerResponse) => forward(request, response, true));

  server.on('connect', (request: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    client.on('error', () => client.destroy());
    if (!credential.accepts(request.headers)) {
      rejected.inc();
      return endSocket(client, credentialRequired(id));
    }
    const target = parseConnectTarget(request.url);
    if (target === undefined) return endSocket(client, 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    if (policy.forbids(target.hostname, target.port)) return failTunnel(client, 'destination_forbidden');
    const reader = createUpstreamReader(readBuffers);
    const upstream = net.connect({ host: target.hostname, port: target.port, lookup: policy.lookup, onread: reader.onread });
    const timer = setTimeout(() => upstream.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })), connectTimeoutMs);
    upstream.once('connect', () => {
      clearTimeout(timer);
      tunnelCount++;
      tunnels.inc();
      openTunnels.inc();
      tunnelSockets.add(client);
      client.write(`HTTP/1.1 200 Connection Established\r\nX-Portcullis-Exit: ${id}\r\nX-Portcullis-Exit-Country: ${country}\r\n\r\n`);
      splice(client, upstream, {
        head,
        reader,
        idleTimeoutMs: 0,
        onClose() {
          tunnelSockets.delete(client);
          openTunnels.dec();
        },
      });
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!client.destroyed && tunnelSockets.has(client)) {
        upstreamErrors.inc({ code: errorCodeOf(error) });
        return void client.destroy();
      }
      failTunnel(client, errorCodeOf(error));
    });
    client.once('close', () => {
      if (upstream.connecting) upstream.destroy();
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  server.keepAliveTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  logger.debug({ id, country, port: bound }, 'exit listening');

  return {
    id,
    country,
    port: bound,
    url: `http://${host}:${bound}`,
    poolUrl: credential.poolUrl(host, bound),
    stats: () => ({ requests: requestCount, tunnels: tunnelCount, openTunnels: tunnelSockets.size }),
    async close(deadlineMs = 0) {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await drain(() => activeRequests === 0 && tunnelSockets.size === 0, deadlineMs, () => server.closeIdleConnections());
      for (const socket of tunnelSockets) socket.destroy();
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}
