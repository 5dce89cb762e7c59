import t from 'tap';
import { waitFor } from '../helpers/deadline.js';
import { bearer, proxyConnect, type ConnectResult } from '../helpers/proxy-client.js';
import { startRegions } from '../helpers/regions.js';

const world = await startRegions(['eu']);
t.teardown(() => world.close());
const [a, b] = [await world.startNode('eu'), await world.startNode('eu')];
const target = `127.0.0.1:${world.origin.port}`;
const open = (port: number, key: string) => proxyConnect(port, target, bearer(key));

function closeAll(tunnels: ConnectResult[]): void {
  for (const tunnel of tunnels) tunnel.socket.destroy();
}

t.test('a per-node cap refuses the connection over it and frees a slot when one closes', async (t) => {
  const { key } = await world.createKey({ concurrency: { perNode: 2 } });
  const tunnels = [await open(a.port, key), await open(a.port, key)];
  t.teardown(() => closeAll(tunnels));
  t.same(tunnels.map((tunnel) => tunnel.status), [200, 200]);
  const third = await open(a.port, key);
  t.equal(third.status, 429);
  t.match(third.head, /X-Portcullis-Error: concurrency_exceeded/);
  t.match(third.head, /Retry-After: 1/);
  third.socket.destroy();
  t.equal((await open(b.port, key)).status, 200, 'another node has its own per-node cap');
  tunnels[0]!.socket.destroy();
  const again = await waitFor(
    async () => {
      const attempt = await open(a.port, key);
      if (attempt.status === 200) return attempt;
      attempt.socket.destroy();
      return undefined;
    },
    { what: 'the freed slot to be usable' },
  );
  tunnels.push(again);
  t.pass('a closed tunnel gives its slot back');
});

t.test('a per-region cap counts connections on every node of the region', async (t) => {
  const { key } = await world.createKey({ concurrency: { perRegion: 3 } });
  const tunnels = [await open(a.port, key), await open(a.port, key), await open(b.port, key)];
  t.teardown(() => closeAll(tunnels));
  t.same(tunnels.map((tunnel) => tunnel.status), [200, 200, 200]);
  for (const node of [a, b]) {
    const over = await open(node.port, key);
    t.equal(over.status, 429, `refused on ${node.nodeId}`);
    over.socket.destroy();
  }
  tunnels.shift()!.socket.destroy();
  const freed = await waitFor(
    async () => {
      const attempt = await open(b.port, key);
      if (attempt.status === 200) return attempt;
      attempt.socket.destroy();
      return undefined;
    },
    { what: 'a slot freed on one node to be usable on the other' },
  );
  tunnels.push(freed);
  t.pass();
});

t.test('20 parallel CONNECTs with perRegion: 2 → exactly 2 open, on one node and across two', async (t) => {
  for (const spread of [[a, a], [a, b]] as const) {
    const { key } = await world.createKey({ concurrency: { perRegion: 2 } });
    const tunnels = await Promise.all(Array.from({ length: 20 }, (_, i) => open(spread[i % 2]!.port, key)));
    t.teardown(() => closeAll(tunnels));
    const statuses = tunnels.map((tunnel) => tunnel.status);
    t.equal(statuses.filter((status) => status === 200).length, 2, `two tunnels open (${spread[0].nodeId}, ${spread[1].nodeId})`);
    t.equal(statuses.filter((status) => status === 429).length, 18, 'every other one refused with 429');
    closeAll(tunnels);
    // The refused ones gave their reservations back: both slots are usable again.
    const again = await waitFor(
      async () => {
        const attempts = await Promise.all([open(a.port, key), open(b.port, key)]);
        if (attempts.every((attempt) => attempt.status === 200)) return attempts;
        closeAll(attempts);
        return undefined;
      },
      { what: 'both slots to be free again' },
    );
    closeAll(again);
  }
});
