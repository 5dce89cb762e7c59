import t from 'tap';
import { createControlPlaneEndpoints } from '../../proxy/sync/control-plane-endpoints.js';

t.test('calls take turns over the control planes; one that failed is tried last until its rest is over', async (t) => {
  let now = 0;
  const endpoints = createControlPlaneEndpoints({ urls: ['a', 'b', 'c'], restMs: 1_000, now: () => now });
  t.same([endpoints.order()[0], endpoints.order()[0], endpoints.order()[0], endpoints.order()[0]], ['a', 'b', 'c', 'a'], 'each call starts with the next one');
  endpoints.failed('b');
  for (let i = 0; i < 3; i++) t.equal(endpoints.order().at(-1), 'b', 'a resting control plane comes last');
  t.same(endpoints.resting(), ['b']);
  now = 1_001;
  t.same(endpoints.resting(), [], 'its rest is over');
  t.ok([0, 1, 2].map(() => endpoints.order()[0]).includes('b'), 'and it takes its turn first again');
  endpoints.failed('a');
  now += 10;
  endpoints.failed('c');
  t.same(endpoints.order().slice(1), ['a', 'c'], 'resting ones by the end of their rest');
  endpoints.worked('a');
  t.same(endpoints.resting(), ['c'], 'an answer ends a rest at once');
});
