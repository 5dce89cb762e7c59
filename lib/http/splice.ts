import type net from 'node:net';

/**
 * Reads an upstream socket into one buffer of its own, reused read after read, instead of
 * a fresh 64 KiB allocation per read. A bulk download through a tunnel then costs about
 * half the CPU, and no more in a process with a large heap, where freshly allocated read
 * buffers wait for the garbage collector before their memory can be reused. The buffer
 * comes from `ReadBuffers` and goes back when the tunnel closes.
 *
 * Pass `onread` to `net.connect`. Until `splice` hands the reads to the client, what
 * arrives goes to `hold` (the CONNECT reply of an upstream exit) or waits, copied.
 */
export interface UpstreamReader {
  readonly onread: net.OnReadOpts;
  /**
   * Receives each read until the tunnel is spliced (without `receive`: they wait, copied,
   * and reading pauses). The chunk is a view of the reused buffer: keep a copy, not the
   * chunk. Returning false pauses reading.
   */
  hold(receive?: (chunk: Buffer) => boolean): void;
}

interface ReaderState extends UpstreamReader {
  /** Sends every read to `client`, starting with `head` and what waited. */
  deliverTo(client: net.Socket, upstream: net.Socket, head: Buffer | undefined): void;
  /** Gives the buffer back; only once both sockets are destroyed, so nothing reads or writes it any more. */
  release(): void;
}

const READ_SIZE = 64 * 1024;

/**
 * Read buffers kept for the next tunnels. A 64 KiB buffer per tunnel is external memory
 * the garbage collector must be run to take back: allocated fresh for every tunnel, it cost
 * V8's collector threads 60 µs per short tunnel, against 14 µs in a proxy without such a buffer.
 */
export interface ReadBuffers {
  acquire(): Buffer;
  release(buffer: Buffer): void;
}

/**
 * Keeps up to `keep` buffers given back, 16 MiB by default: enough for the tunnels that
 * open and close in the same moments; beyond that they are left to the collector.
 */
export function createReadBuffers({ keep = 256 }: { keep?: number } = {}): ReadBuffers {
  const free: Buffer[] = [];
  return {
    acquire: () => free.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE),
    release(buffer) {
      if (free.length < keep) free.push(buffer);
    },
  };
}

export function createUpstreamReader(buffers: ReadBuffers): UpstreamReader {
  const buffer = buffers.acquire();
  let released = false;
  let waiting: Buffer[] = [];
  const wait = (chunk: Buffer): boolean => {
    waiting.push(Buffer.from(chunk));
    return false;
  };
  let receive = wait;
  const state: ReaderState = {
    onread: { buffer, callback: (bytes) => receive(buffer.subarray(0, bytes)) },
    hold(next = wait) {
      receive = next;
    },
    deliverTo(client, upstream, head) {
      const early = head === undefined ? waiting : [head, ...waiting];
      waiting = [];
      for (const chunk of early) if (chunk.length > 0) client.write(chunk);
      // A write the socket could not flush at once still points into the buffer, so reading
      // pauses until that write is flushed: the buffer is never overwritten under a write.
      // The write's callback, not 'drain', says so: a chunk under the high-water mark that
      // waits never makes the socket emit 'drain', and the tunnel would stall for good.
      let paused = false;
      const flushed = () => {
        if (!paused || client.writableLength > 0) return;
        paused = false;
        upstream.resume();
      };
      receive = (chunk) => {
        client.write(chunk, flushed);
        if (client.writableLength === 0) return true;
        paused = true;
        return false;
      };
      // What waited was copied, so nothing points into the buffer yet.
      upstream.resume();
    },
    release() {
      if (released) return;
      released = true;
      buffers.release(buffer);
    },
  };
  return state;
}

export interface SpliceOptions {
  /** Bytes the client sent after its CONNECT line, for the target. */
  head: Buffer;
  /** Bytes an upstream proxy sent after its 200, for the client. */
  upstreamHead?: Buffer | undefined;
  /** How `upstream` is read, if it was connected with a reader's `onread`; else it is piped. Its buffer goes back when the tunnel closes. */
  reader?: UpstreamReader | undefined;
  /** A tunnel with no traffic either way for this long is closed; 0 keeps it open. */
  idleTimeoutMs: number;
  /** Called once, when either side has closed or failed and both are destroyed. */
  onClose(): void;
}

/**
 * `from`'s bytes to `to`, pausing while `to` is full, and its end after them. What `pipe`
 * does for a tunnel with three listeners instead of its dozen: errors and closes are
 * the splice's to handle.
 */
function forward(from: net.Socket, to: net.Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  // A client that left while it was being admitted may have ended already: its end is passed on all the same.
  if (from.readableEnded) to.end();
  else from.once('end', () => to.end());
  from.resume();
}

/**
 * Joins an established tunnel's two sockets: bytes flow both ways with backpressure until
 * either side closes, fails or idles out, and then both are destroyed.
 */
export function splice(client: net.Socket, upstream: net.Socket, { head, upstreamHead, reader, idleTimeoutMs, onClose }: SpliceOptions): void {
  if (head.length > 0) upstream.write(head);
  forward(client, upstream);
  if (reader === undefined) {
    if (upstreamHead !== undefined && upstreamHead.length > 0) client.write(upstreamHead);
    forward(upstream, client);
  } else {
    (reader as ReaderState).deliverTo(client, upstream, upstreamHead);
    if (upstream.readableEnded) client.end();
    else upstream.once('end', () => client.end());
  }
  let closed = false;
  const closeBoth = () => {
    client.destroy();
    upstream.destroy();
    if (closed) return;
    closed = true;
    (reader as ReaderState | undefined)?.release();
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
