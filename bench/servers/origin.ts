/**
 * A local origin for proxy benchmarks: every HTTP request gets the same body (1 KiB by
 * default), keep-alive; a TCP server that answers one line and closes (CONNECT setup
 * rate); and a TCP server that sends `bulkBytes` as fast as it is read, then closes
 * (throughput through one tunnel).
 *
 * usage: origin.ts [bodyBytes] [bulkBytes]
 */
import http from 'node:http';
import net from 'node:net';

const body = Buffer.alloc(Number(process.argv[2] ?? 1024), 'x');
const bulkBytes = Number(process.argv[3] ?? 1 << 30);
const block = Buffer.alloc(256 * 1024, 'y');

const server = http.createServer((_request, response) => {
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
  response.end(body);
});
server.keepAliveTimeout = 60_000;

const oneLine = net.createServer((socket) => socket.end('ok\n'));

const bulk = net.createServer((socket) => {
  let left = bulkBytes;
  const send = () => {
    while (left > 0) {
      const chunk = left >= block.length ? block : block.subarray(0, left);
      left -= chunk.length;
      if (!socket.write(chunk)) return void socket.once('drain', send);
    }
    socket.end();
  };
  socket.on('error', () => socket.destroy());
  send();
});

const listen = (target: net.Server) => new Promise<number>((resolve) => target.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => resolve((target.address() as net.AddressInfo).port)));
const [httpPort, tcpPort, bulkPort] = await Promise.all([listen(server), listen(oneLine), listen(bulk)]);
process.stdout.write(`${JSON.stringify({ http: httpPort, tcp: tcpPort, bulk: bulkPort })}\n`);
