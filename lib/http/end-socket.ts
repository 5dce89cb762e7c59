import type net from 'node:net';

/** How long a client may keep its side of a connection open after our last word. */
const LINGER_MS = 1_000;

/**
 * Sends a last answer on a raw socket and closes it. `end()` alone only half-closes: a
 * client that never closes its side would hold the connection open for ever, and many
 * such clients would pile up, so the socket is destroyed shortly after whatever the client
 * does (proxy-chain's `sendSocketResponse` does the same).
 */
export function endSocket(socket: net.Socket, answer: string | Uint8Array): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(answer);
}
