import t, { type Test } from 'tap';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, errors } from 'undici';
import { waitFor } from '../helpers/deadline.js';
import { IdleFirstPool } from '../../proxy/egress/idle-first-pool.js';

/**
 * The node's keep-alive connections to one origin: one per request in flight, the freed
 * ones reused last-freed first, a connection that failed dropped.
 */

interface Origin {
  url: string;
  /** Connections the origin has accepted so far. */
  accepted(): number;
  /** Requests waiting on `release`. */
  held(): number;
  release(): void;
  close(): Promise<void>;
}

/** An origin answering `/` at once and holding `/hold` until released. */
async function startOrigin(port = 0): Promise<Origin> {
  let accepted = 0;
  const holding: http.ServerResponse[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((request, response) => {
    if (request.url === '/hold') return void holding.push(response);
    response.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: Socket) => {
    accepted++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted: () => accepted,
    held: () => holding.length,
    release: () => {
      for (const response of holding.splice(0)) response.end('released');
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const options = { keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 };

/** An origin and a pool to it, both gone when the test ends. */
async function poolToOrigin(t: Test): Promise<{ origin: Origin; pool: IdleFirstPool }> {
  const origin = await startOrigin();
  const pool = new IdleFirstPool(origin.url, options);
  t.teardown(async () => {
    await pool.destroy();
    await origin.close();
  });
  return { origin, pool };
}

t.test('requests in flight each get a connection; one held does not hold up the rest', async (t) => {
  const { origin, pool } = await poolToOrigin(t);
  const held = Array.from({ length: 5 }, () => pool.request({ path: '/hold', method: 'GET' }));
  await waitFor(() => origin.held() === 5, { what: 'five held requests at the origin' });
  const quick = await pool.request({ path: '/', method: 'GET' });
  t.equal(await quick.body.text(), 'ok', 'a sixth request is answered while five are held');
  t.equal(origin.accepted(), 6, 'six requests in flight, six connections');
  origin.release();
  for (const response of await Promise.all(held)) t.equal(await response.body.text(), 'released');
});

t.test('requests one after another reuse one connection', async (t) => {
  const { origin, pool } = await poolToOrigin(t);
  for (let i = 0; i < 20; i++) {
    t.equal(await (await pool.request({ path: '/', method: 'GET' })).body.text(), 'ok');
    // A connection says it is free a microtask after its response ended.
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.equal(origin.accepted(), 1);
});

t.test('a connection that could not connect is dropped, and the next request gets a new one', async (t) => {
  const first = await startOrigin();
  const port = Number(new URL(first.url).port);
  await first.close();
  const pool = new IdleFirstPool(first.url, options);
  t.teardown(() => pool.destroy());
  await t.rejects(pool.request({ path: '/', method: 'GET' }), { code: 'ECONNREFUSED' }, 'nothing listens');
  const again = await startOrigin(port);
  t.teardown(() => again.close());
  t.equal(await (await pool.request({ path: '/', method: 'GET' })).body.text(), 'ok', 'the origin back, the pool reaches it');
});

t.test('a closed pool refuses requests with undici’s error', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const pool = new IdleFirstPool(origin.url, options);
  t.equal(await (await pool.request({ path: '/', method: 'GET' })).body.text(), 'ok');
  await pool.close();
  t.ok(pool.destroyed);
  await t.rejects(pool.request({ path: '/', method: 'GET' }), errors.ClientClosedError);
});

t.test('as an Agent’s pools: connections that all closed let the Agent drop the pool, and the next request opens a new one', async (t) => {
  const origin = await startOrigin();
  const agent = new Agent({ ...options, factory: (url, factoryOptions) => new IdleFirstPool(url, factoryOptions) });
  t.teardown(async () => {
    await agent.destroy();
    await origin.close();
  });
  const disconnected: string[] = [];
  agent.on('disconnect', (url) => disconnected.push(String(url)));
  t.equal(await (await agent.request({ origin: origin.url, path: '/', method: 'GET' })).body.text(), 'ok');
  await origin.close();
  await waitFor(() => disconnected.length === 1, { what: 'the agent to hear of the closed connection' });
  const back = await startOrigin(Number(new URL(origin.url).port));
  t.teardown(() => back.close());
  t.equal(await (await agent.request({ origin: origin.url, path: '/', method: 'GET' })).body.text(), 'ok');
  t.equal(back.accepted(), 1);
});
