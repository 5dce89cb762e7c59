/**
 * The primary's count of each key's per-node concurrency slots over all its workers, so a
 * key's `perNode` cap holds for the node as a whole. Counts are kept per worker so that a
 * worker that dies gives back every slot it held.
 */
export interface NodeSlotLedger<W> {
  acquire(worker: W, keyId: string, perNode: number): boolean;
  release(worker: W, keyId: string): void;
  workerGone(worker: W): void;
  /** Slots of the key held on the node. */
  held(keyId: string): number;
}

export function createNodeSlotLedger<W>(): NodeSlotLedger<W> {
  const totals = new Map<string, number>();
  const byWorker = new Map<W, Map<string, number>>();

  function take(keyId: string, count: number): void {
    const left = (totals.get(keyId) ?? 0) - count;
    if (left <= 0) totals.delete(keyId);
    else totals.set(keyId, left);
  }

  return {
    acquire(worker, keyId, perNode) {
      const total = totals.get(keyId) ?? 0;
      if (total >= perNode) return false;
      totals.set(keyId, total + 1);
      const own = byWorker.get(worker) ?? new Map<string, number>();
      byWorker.set(worker, own);
      own.set(keyId, (own.get(keyId) ?? 0) + 1);
      return true;
    },
    release(worker, keyId) {
      const own = byWorker.get(worker);
      const count = own?.get(keyId) ?? 0;
      // A release the ledger never granted (a duplicate) must not free another worker's slot.
      if (own === undefined || count === 0) return;
      if (count === 1) own.delete(keyId);
      else own.set(keyId, count - 1);
      if (own.size === 0) byWorker.delete(worker);
      take(keyId, 1);
    },
    workerGone(worker) {
      for (const [keyId, count] of byWorker.get(worker) ?? []) take(keyId, count);
      byWorker.delete(worker);
    },
    held: (keyId) => totals.get(keyId) ?? 0,
  };
}
