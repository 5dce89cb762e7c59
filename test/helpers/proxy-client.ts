import http from 'node:http';
import net from 'node:net';

export interface ProxyResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One absolute-form request through a proxy with Node's http client. */
export function proxyRequest(
  proxyPort: number,
  url: string,
  headers: Record<string, string> = {},
  options: { method?: string; body?: string; agent?: http.Agent } = {},
): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port: proxyPort, method: options.method ?? 'GET', path: url, headers: { host: URL.canParse(url) ? new URL(url).host : 'localhost', ...headers }, agent: options.agent ?? false },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

export const bearer = (key: string) => ({ 'proxy-authorization': `Bearer ${key}` });
export const basic = (user: string, key: string) => ({ 'proxy-authorization': `Basic ${Buffer.from(`${user}:${key}`).toString('base64')}` });

export interface ConnectResult {
  status: number;
  head: string;
  socket: net.Socket;
}

/** Sends a raw CONNECT and resolves with the proxy's answer and the open socket. */
export function proxyConnect(proxyPort: number, authority: string, headers: Record<string, string> = {}): Promise<ConnectResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxyPort, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    const onData = (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const head = received.slice(0, end);
      const rest = received.slice(end + 4);
      if (rest.length > 0) socket.unshift(Buffer.from(rest, 'latin1'));
      resolve({ status: Number(head.split(' ')[1]), head, socket });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.on('connect', () => {
      const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
  });
}
