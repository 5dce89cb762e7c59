import t from 'tap';
import type { VerifiedKey } from '../../contract/node-api.js';
import type { BatchVerifyResult } from '../../proxy/sync/node-api-client.js';
import { createVerifyBatcher } from '../../proxy/auth/verify-batcher.js';

const keyFor = (hash: string): VerifiedKey => ({
  id: `key_${hash}`,
  teamId: 'team_1',
  status: 'active',
  pools: [],
  countries: [],
  expiresAt: null,
  rateLimit: null,
  concurrency: null,
  overQuota: false,
});

/** A control plane stand-in whose calls the test answers one by one. */
function heldCalls() {
  const calls: { hashes: string[]; answer(known: (hash: string) => boolean): void; fail(error: Error): void }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  return {
    calls,
    maxInFlight: () => maxInFlight,
    verifyMany(hashes: string[]): Promise<BatchVerifyResult> {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise((resolve, reject) => {
        calls.push({
          hashes,
          answer(known) {
            inFlight--;
            resolve({ keys: new Map(hashes.filter(known).map((hash) => [hash, keyFor(hash)])), seq: 7, epoch: 'e1' });
          },
          fail(error) {
            inFlight--;
            reject(error);
          },
        });
      });
    },
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

t.test('misses of one turn share a call; later ones wait for a free slot and go out together', async (t) => {
  const control = heldCalls();
  const sizes: number[] = [];
  const batcher = createVerifyBatcher({ verifyMany: control.verifyMany, maxBatchSize: 100, maxConcurrentCalls: 2, onCall: (keys) => sizes.push(keys) });
  const hashes = Array.from({ length: 450 }, (_, i) => `h${i}`);
  const results = hashes.map((hash) => batcher.verify(hash));
  await settle();
  t.same(sizes, [100, 100], 'two full calls, the cap');
  control.calls[0]!.answer((hash) => hash !== 'h3');
  await settle();
  t.same(sizes, [100, 100, 100], 'a freed slot takes the next batch');
  for (let next = 1; next < control.calls.length; next++) {
    control.calls[next]!.answer(() => true);
    await settle();
  }
  const answers = await Promise.all(results);
  t.equal(control.maxInFlight(), 2, 'never more than two calls at once');
  t.same(sizes.reduce((sum, size) => sum + size, 0), 450, 'each key asked once');
  t.equal(answers[0]!.key?.id, 'key_h0');
  t.equal(answers[3]!.key, null, 'an unknown hash answers null');
  t.ok(answers.every((answer) => answer.seq === 7), 'with the snapshot seq');
});

t.test('a hash asked twice in one turn is sent once and answers both', async (t) => {
  const control = heldCalls();
  const batcher = createVerifyBatcher({ verifyMany: control.verifyMany, maxBatchSize: 100, maxConcurrentCalls: 2, onCall: () => {} });
  const both = Promise.all([batcher.verify('a'), batcher.verify('a'), batcher.verify('b')]);
  await settle();
  t.same(control.calls[0]!.hashes, ['a', 'b']);
  control.calls[0]!.answer(() => true);
  t.same((await both).map((result) => result.key?.id), ['key_a', 'key_a', 'key_b']);
});

t.test('a failed call fails every key in it, and the next call goes out', async (t) => {
  const control = heldCalls();
  const batcher = createVerifyBatcher({ verifyMany: control.verifyMany, maxBatchSize: 2, maxConcurrentCalls: 1, onCall: () => {} });
  const first = [batcher.verify('a'), batcher.verify('b')].map((promise) => promise.catch((error: Error) => error.message));
  const later = batcher.verify('c');
  await settle();
  control.calls[0]!.fail(new Error('control plane down'));
  t.same(await Promise.all(first), ['control plane down', 'control plane down']);
  await settle();
  t.same(control.calls[1]!.hashes, ['c']);
  control.calls[1]!.answer(() => true);
  t.equal((await later).key?.id, 'key_c');
});
