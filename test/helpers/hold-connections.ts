/**
 * Run as a process of its own (it needs more open files than a test has):
 * `hold-connections.ts <port> <idle> <slow>` opens `idle` connections that never send a
 * byte and `slow` connections that send a request's headers a few bytes at a time and never
 * finish them (slowloris), prints one JSON line once all are open, and holds them until it
 * is killed.
 */
import net from 'node:net';

const [port, idle, slow] = process.argv.slice(2).map(Number) as [number, number, number];
const WAVE = 250;
const TRICKLE_MS = 500;

function open(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
    socket.on('error', () => {});
    socket.resume();
  });
}

// In waves, so the server's accept queue never overflows.
const sockets: net.Socket[] = [];
while (sockets.length < idle + slow) {
  sockets.push(...(await Promise.all(Array.from({ length: Math.min(WAVE, idle + slow - sockets.length) }, open))));
}
const slowSockets = sockets.slice(idle);
for (const socket of slowSockets) socket.write('GET http://127.0.0.1/slowloris HTTP/1.1\r\nHost: 127.0.0.1\r\n');
let header = 0;
setInterval(() => {
  header++;
  for (const socket of slowSockets) if (!socket.destroyed) socket.write(`X-Slow-${header}: 1\r\n`);
}, TRICKLE_MS);
process.stdout.write(`${JSON.stringify({ msg: 'all open', idle, slow })}\n`);
