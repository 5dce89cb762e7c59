import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { waitFor } from '../helpers/deadline.js';
import { bearer, proxyConnect } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

/**
 * A tunnel carries every byte unchanged, in order, both ways — also when the client reads
 * slowly and the proxy must hold back the target (upstream reads land in a reused buffer,
 * so a write that waits must never see that buffer overwritten).
 */

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
await world.cp.request('POST', '/v1/pools', { body: { name: 'direct', exits: [{ country: 'US', url: 'direct' }] } });
const { key } = await world.createKey();

// More than every socket buffer on the way can hold (Linux grows a receive buffer to 32 MiB).
const DOWNLOAD = randomBytes(160 * 1024 * 1024);
const digest = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * Sends DOWNLOAD once the client has sent something (so nothing arrives before the client
 * listens), and answers with the hash of everything it received once the client finishes.
 */
let serving: net.Socket | undefined;
const target = net.createServer({ allowHalfOpen: true }, (socket) => {
  serving = socket;
  const received = createHash('sha256');
  socket.once('data', () => socket.write(DOWNLOAD));
  socket.on('data', (chunk) => received.update(chunk));
  socket.on('end', () => socket.end(`\n${received.digest('hex')}`));
  socket.on('error', () => socket.destroy());
});
await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => target.close(() => resolve())));
const targetAuthority = `127.0.0.1:${(target.address() as net.AddressInfo).port}`;

for (const [route, headers] of [
  ['direct egress', { ...bearer(key), 'proxy-pool': 'direct' }],
  ['through an upstream exit', { ...bearer(key), 'proxy-pool': 'residential' }],
] as const) {
  t.test(`${route}: a slow reader gets the download intact and the target gets the upload intact`, async (t) => {
    const tunnel = await waitFor(
      async () => {
        const attempt = await proxyConnect(world.node.port, targetAuthority, headers);
        if (attempt.status === 200) return attempt;
        attempt.socket.destroy();
        return false;
      },
      { what: `a tunnel by ${route} (the node loads new pools within a second)` },
    );
    const socket = tunnel.socket;
    const upload = randomBytes(4 * 1024 * 1024);
    // The client does not read until every buffer between it and the target is full, so the
    // node must hold writes back while reads keep arriving.
    socket.pause();
    socket.write(upload.subarray(0, 1));
    await waitFor(() => serving !== undefined && serving.writableLength > 0, { what: 'backpressure to reach the target' });
    const chunks: Buffer[] = [];
    let total = 0;
    socket.on('data', (data: string | Buffer) => {
      // The helper reads the CONNECT reply as latin1 text, which maps bytes one to one.
      const chunk = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
      chunks.push(chunk);
      total += chunk.length;
    });
    socket.resume();
    socket.end(upload.subarray(1));
    await waitFor(() => total >= DOWNLOAD.length + 65, { what: `the whole download through the ${route} tunnel`, timeoutMs: 30_000 });
    await waitFor(() => socket.destroyed || socket.readableEnded, { what: 'the tunnel to close' });
    const received = Buffer.concat(chunks);
    t.equal(received.length, DOWNLOAD.length + 65, 'every byte arrived');
    t.equal(digest(received.subarray(0, DOWNLOAD.length)), digest(DOWNLOAD), 'the download arrived unchanged');
    t.equal(received.subarray(DOWNLOAD.length + 1).toString(), digest(upload), 'the upload arrived unchanged');
  });
}

/**
 * A target that sends in small writes makes the node read small chunks; once the client's
 * socket is full, such a chunk waits under the high-water mark, where Node never emits
 * 'drain'. The tunnel must still resume when the client reads again.
 */
const TRICKLE = randomBytes(48 * 1024 * 1024);
let trickling: net.Socket | undefined;
const trickleTarget = net.createServer((socket) => {
  trickling = socket;
  socket.on('error', () => socket.destroy());
  socket.once('data', async () => {
    for (let offset = 0; offset < TRICKLE.length && !socket.destroyed; offset += 1000) {
      // Yielding after each write lets the node read each one on its own.
      if (!socket.write(TRICKLE.subarray(offset, offset + 1000))) await new Promise((resolve) => socket.once('drain', resolve));
      else await new Promise((resolve) => setImmediate(resolve));
    }
    socket.end();
  });
});
await new Promise<void>((resolve) => trickleTarget.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => trickleTarget.close(() => resolve())));

t.test('a download sent in small writes resumes after the client stopped reading', async (t) => {
  const tunnel = await proxyConnect(world.node.port, `127.0.0.1:${(trickleTarget.address() as net.AddressInfo).port}`, { ...bearer(key), 'proxy-pool': 'direct' });
  t.equal(tunnel.status, 200);
  const socket = tunnel.socket;
  socket.pause();
  socket.write('go');
  await waitFor(() => trickling !== undefined && trickling.writableLength > 0, { what: 'backpressure to reach the trickling target' });
  const chunks: Buffer[] = [];
  let total = 0;
  socket.on('data', (data: string | Buffer) => {
    const chunk = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    chunks.push(chunk);
    total += chunk.length;
  });
  socket.resume();
  await waitFor(() => total >= TRICKLE.length, { what: 'the whole trickled download', timeoutMs: 30_000 });
  t.equal(digest(Buffer.concat(chunks)), digest(TRICKLE), 'the download arrived unchanged');
  socket.destroy();
});

/**
 * A closed tunnel's read buffer is kept for the next one: tunnels that open and close in
 * waves, side by side, each carry only their own bytes, also when every one of them has a
 * write waiting on its client at the same moment.
 */
const SIDE_BY_SIDE = 8;
// Each target sends its own block over and over: more than the buffers on the way hold.
const blocks = Array.from({ length: SIDE_BY_SIDE }, () => randomBytes(1024 * 1024));
const REPEATS = 48;
const expectedDigests = blocks.map((block) => {
  const hash = createHash('sha256');
  for (let i = 0; i < REPEATS; i++) hash.update(block);
  return hash.digest('hex');
});
const sending = new Set<net.Socket>();
const distinctTarget = net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.once('data', (index: Buffer) => {
    sending.add(socket);
    for (let i = 0; i < REPEATS; i++) socket.write(blocks[Number(index.toString())]);
    socket.end();
  });
  socket.once('close', () => sending.delete(socket));
});
await new Promise<void>((resolve) => distinctTarget.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => distinctTarget.close(() => resolve())));

t.test('tunnels opening and closing side by side, in waves, each get their own bytes', async (t) => {
  const authority = `127.0.0.1:${(distinctTarget.address() as net.AddressInfo).port}`;
  let intact = 0;
  for (let wave = 0; wave < 2; wave++) {
    const tunnels = await Promise.all(
      blocks.map(async (_, index) => {
        const tunnel = await proxyConnect(world.node.port, authority, { ...bearer(key), 'proxy-pool': 'direct' });
        t.equal(tunnel.status, 200);
        tunnel.socket.pause();
        tunnel.socket.write(String(index));
        return tunnel.socket;
      }),
    );
    try {
      // Every target held back: each tunnel's client has a write waiting that points into its read buffer.
      await waitFor(() => sending.size === SIDE_BY_SIDE && [...sending].every((socket) => socket.writableLength > 0), { what: 'backpressure on every tunnel' });
      await Promise.all(
        tunnels.map(async (socket, index) => {
          const received = createHash('sha256');
          socket.on('data', (data: string | Buffer) => received.update(typeof data === 'string' ? Buffer.from(data, 'latin1') : data));
          const closed = new Promise((resolve) => socket.once('close', resolve));
          socket.resume();
          await closed;
          if (received.digest('hex') === expectedDigests[index]) intact++;
        }),
      );
    } finally {
      for (const socket of tunnels) socket.destroy();
    }
  }
  t.equal(intact, 2 * SIDE_BY_SIDE, 'every tunnel got exactly its own bytes');
});
