import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OpsServerOptions {
  host: string;
  port: number;
  /** A prom-client registry, or anything that renders metrics the same way (a node's workers' aggregated). */
  registry: { contentType: string; metrics(): Promise<string> };
  isReady(): boolean;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

/** `/healthz`, `/readyz` and `/metrics` for a process whose main port speaks another protocol. */
export async function createOpsServer({ host, port, registry, isReady }: OpsServerOptions): Promise<OpsServer> {
  const server = http.createServer((request, response) => {
    const path = request.url?.split('?')[0];
    if (request.method !== 'GET') return void response.writeHead(405).end();
    if (path === '/healthz') return void response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    if (path === '/readyz') {
      const ready = isReady();
      return void response.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(`{"status":"${ready ? 'ready' : 'starting'}"}`);
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => response.writeHead(500).end(),
      );
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
