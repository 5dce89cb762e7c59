/** A local origin for proxy benchmarks: every request gets the same 1 KiB body, keep-alive. */
import http from 'node:http';
import net from 'node:net';

const body = Buffer.alloc(Number(process.argv[2] ?? 1024), 'x');
const server = http.createServer((_request, response) => {
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
  response.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  // A TCP server for CONNECT benchmarks: answers one line and closes.
  const tcp = net.createServer((socket) => socket.end('ok\n'));
  tcp.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ http: (server.address() as net.AddressInfo).port, tcp: (tcp.address() as net.AddressInfo).port })}\n`);
  });
});
