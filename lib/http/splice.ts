import type net from 'node:net';

export interface SpliceOptions {
  /** Bytes the client sent after its CONNECT line, for the target. */
  head: Buffer;
  /** Bytes an upstream proxy sent after its 200, for the client. */
  upstreamHead?: Buffer | undefined;
  /** A tunnel with no traffic either way for this long is closed; 0 keeps it open. */
  idleTimeoutMs: number;
  /** Called once, when either side has closed or failed and both are destroyed. */
  onClose(): void;
}

/**
 * Joins an established tunnel's two sockets: bytes flow both ways with backpressure until
 * either side closes, fails or idles out, and then both are destroyed.
 */
export function splice(client: net.Socket, upstream: net.Socket, { head, upstreamHead, idleTimeoutMs, onClose }: SpliceOptions): void {
  if (head.length > 0) upstream.write(head);
  if (upstreamHead !== undefined && upstreamHead.length > 0) client.write(upstreamHead);
  client.pipe(upstream);
  upstream.pipe(client);
  let closed = false;
  const closeBoth = () => {
    client.destroy();
    upstream.destroy();
    if (closed) return;
    closed = true;
    onClose();
  };
  client.once('close', closeBoth);
  upstream.once('close', closeBoth);
  client.on('error', closeBoth);
  upstream.on('error', closeBoth);
  if (idleTimeoutMs > 0) {
    client.setTimeout(idleTimeoutMs, closeBoth);
    upstream.setTimeout(idleTimeoutMs, closeBoth);
  }
}
