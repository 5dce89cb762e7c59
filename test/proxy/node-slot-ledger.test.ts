import t from 'tap';
import { createNodeSlotLedger } from '../../proxy/cluster/node-slot-ledger.js';

/**
 * The primary's ledger of per-node concurrency slots. Promise: a key's cap holds over all
 * the workers together; a slot comes back when its worker releases it or dies; a release
 * the ledger never granted frees nothing.
 */

t.test("a key's cap holds over all the workers together", async (t) => {
  const ledger = createNodeSlotLedger<string>();
  t.same(['a', 'b', 'a', 'b'].map((worker) => ledger.acquire(worker, 'k', 3)), [true, true, true, false], '3 of 4 across two workers');
  t.equal(ledger.acquire('a', 'other', 1), true, 'other keys count apart');
  ledger.release('b', 'k');
  t.equal(ledger.held('k'), 2, 'a release gives one back');
  t.equal(ledger.acquire('a', 'k', 3), true, 'and it can be taken again');
});

t.test('a dead worker gives back every slot it held; a stray release frees nothing', async (t) => {
  const ledger = createNodeSlotLedger<string>();
  ledger.acquire('a', 'k', 3);
  ledger.acquire('a', 'k', 3);
  ledger.acquire('b', 'k', 3);
  ledger.release('c', 'k');
  ledger.release('b', 'other');
  t.equal(ledger.held('k'), 3, "a release of a slot a worker does not hold frees no one else's");
  ledger.workerGone('a');
  t.equal(ledger.held('k'), 1, "worker a's two slots come back");
  ledger.release('a', 'k');
  t.equal(ledger.held('k'), 1, 'its late release frees nothing more');
  ledger.workerGone('b');
  t.equal(ledger.held('k'), 0);
});
