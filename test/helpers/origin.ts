import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Origin {
  port: number;
  url: string;
  /** Every request the origin received, oldest first. */
  seen: SeenRequest[];
  close(): Promise<void>;
}

function handler(seen: SeenRequest[]) {
  return (request: http.IncomingMessage, response: http.ServerResponse) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      seen.push({ method: request.method!, url: request.url!, headers: request.headers, body });
      if (request.url?.startsWith('/stream')) {
        // A response that never ends, for tests that cut traffic already flowing:
        // `?bytes=n` sends n bytes every 20 ms instead of a short line.
        const bytes = Number(new URL(request.url, 'http://origin').searchParams.get('bytes') ?? 0);
        const chunk = bytes > 0 ? 'x'.repeat(bytes) : 'tick\n';
        response.writeHead(200, { 'content-type': 'text/plain' });
        const timer = setInterval(() => response.write(chunk), 20);
        response.on('close', () => clearInterval(timer));
        return;
      }
      const exit = request.headers['x-portcullis-exit'];
      response.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'yes' });
      response.end(JSON.stringify({ method: request.method, url: request.url, exit: exit ?? null, body }));
    });
  };
}

async function listen(server: http.Server, url: (port: number) => string, seen: SeenRequest[]): Promise<Origin> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: url(port),
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A plain HTTP origin answering JSON that echoes the request and the exit that carried it. */
export function startOrigin(): Promise<Origin> {
  const seen: SeenRequest[] = [];
  return listen(http.createServer(handler(seen)), (port) => `http://127.0.0.1:${port}`, seen);
}

/** The same origin over TLS with a throwaway self-signed certificate for 127.0.0.1. */
export function startHttpsOrigin(): Promise<Origin> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    const seen: SeenRequest[] = [];
    const server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, handler(seen));
    return listen(server, (port) => `https://127.0.0.1:${port}`, seen);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
