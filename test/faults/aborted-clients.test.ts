import t from 'tap';
import net from 'node:net';
import type { NodeApiClient } from '../../proxy/sync/node-api-client.js';
import { deadline, waitFor, within } from '../helpers/deadline.js';
import { bearer, proxyConnect, type ConnectResult } from '../helpers/proxy-client.js';
import { startWorld } from '../helpers/world.js';

/**
 * Clients that leave at the worst moment: while their key is being checked, or with
 * answers still queued on a pipelined connection. Promise: a key with `perNode: N` keeps
 * its N slots, the node keeps no dead socket, and shutdown does not wait for them.
 */

const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());

// Verify calls wait while the gate is shut, so admission can be caught half-way.
let gate: Promise<void> | undefined;
let openGate = () => {};
let verifying = 0;
const gated = (api: NodeApiClient): NodeApiClient => ({
  ...api,
  async verifyKeys(hashes) {
    verifying++;
    try {
      await gate;
      return await api.verifyKeys(hashes);
    } finally {
      verifying--;
    }
  },
});
function shutGate(): void {
  gate = new Promise((resolve) => (openGate = resolve));
}

// A one-millisecond cache: every request asks the control plane, through the gate.
const node = await world.startNode({
  wrapApi: gated,
  cache: { maxEntries: 1_000, ttlMs: 1, negativeTtlMs: 10_000, maxNegativeEntries: 1_000, unknownPerSecond: 1_000, unknownPerSecondPerClient: 1_000, maxVerifyInFlight: 1_000 },
});
const origin = world.origin;

function rawClient(request: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(node.port, '127.0.0.1', () => {
      socket.write(request);
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

const get = (key: string, path: string) => `GET ${origin.url}${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nProxy-Authorization: Bearer ${key}\r\n\r\n`;
const connect = (key: string) => `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nProxy-Authorization: Bearer ${key}\r\n\r\n`;

/**
 * Leaves while every request is stuck in admission, then lets admission finish. A CONNECT
 * socket is no longer read once Node hands it over, so the node cannot see that client go
 * until it writes to it; a plain request's socket is still read, and its departure is seen.
 */
async function abandonDuringAdmission(requests: string[], departureSeen: boolean): Promise<void> {
  shutGate();
  try {
    const clients = await Promise.all(requests.map(rawClient));
    await waitFor(() => verifying > 0 && node.openConnections() === clients.length, { what: 'every request to wait for its key check' });
    for (const client of clients) client.destroy();
    if (departureSeen) await waitFor(() => node.openConnections() === 0, { what: 'the node to see every client leave' });
  } finally {
    openGate();
  }
  await waitFor(() => verifying === 0, { what: 'the key checks to finish' });
}

async function openTunnels(key: string, count: number): Promise<ConnectResult[]> {
  return Promise.all(Array.from({ length: count }, () => proxyConnect(node.port, `127.0.0.1:${origin.port}`, bearer(key))));
}

/** Waits until the key's two slots open two tunnels at once, and returns them. */
function bothSlots(key: string, what: string): Promise<ConnectResult[]> {
  return waitFor(
    async () => {
      const opened = await openTunnels(key, 2);
      if (opened.every((tunnel) => tunnel.status === 200)) return opened;
      opened.forEach((tunnel) => tunnel.socket.destroy());
      return undefined;
    },
    { what },
  );
}

async function closedOnRevocation(id: string): Promise<number> {
  await world.cp.request('POST', `/v1/teams/${world.team.id}/keys/${id}/revoke`);
  const status = await waitFor(
    async () => {
      const response = await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${id}/revocation`);
      return response.body.complete === true ? response.body : undefined;
    },
    { what: 'the revocation to be applied' },
  );
  const nodes = status.regions.flatMap((region: { nodes: { nodeId: string; closedConnections: number }[] }) => region.nodes);
  return nodes.find((entry: { nodeId: string }) => entry.nodeId === node.nodeId).closedConnections;
}

for (const [kind, request, departureSeen] of [
  ['requests', (key: string) => get(key, '/abandoned'), true],
  ['CONNECT tunnels', connect, false],
] as const) {
  t.test(`${kind} abandoned during admission give their slots back and leave no socket behind`, async (t) => {
    const { id, key } = await world.createKey({ concurrency: { perNode: 2 } });
    const seenBefore = origin.seen.length;
    for (let round = 0; round < 3; round++) await abandonDuringAdmission(Array.from({ length: 10 }, () => request(key)), departureSeen);
    const tunnels = await bothSlots(key, 'both slots to be usable after 30 abandoned attempts');
    t.teardown(() => tunnels.forEach((tunnel) => tunnel.socket.destroy()));
    t.pass('after 30 abandoned attempts the key still has both slots');
    t.equal(origin.seen.length, seenBefore, 'nothing was sent on behalf of clients that had left');
    t.equal(await closedOnRevocation(id), 2, 'a revocation finds only the two live tunnels');
  });
}

t.test('answers queued on a pipelined connection that dies give their slots back, and shutdown does not wait for them', async (t) => {
  const { key } = await world.createKey({ concurrency: { perNode: 2 } });
  const seenBefore = origin.seen.length;
  // The first answer never ends, so the second waits behind it on the connection.
  const client = await rawClient(get(key, '/stream') + get(key, '/queued'));
  await waitFor(() => origin.seen.length === seenBefore + 2, { what: 'both pipelined requests to reach the origin' });
  client.destroy();
  const tunnels = await bothSlots(key, 'both slots to come back');
  tunnels.forEach((tunnel) => tunnel.socket.destroy());
  await waitFor(() => node.openConnections() === 0, { what: 'every connection to close' });
  const started = Date.now();
  await within(node.close(deadline(10_000)), { what: 'the node to close' });
  t.ok(Date.now() - started < deadline(2_000), `closed in ${Date.now() - started} ms, not at its 10 s deadline`);
});
