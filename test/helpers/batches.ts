/** Runs `work` over `items`, `size` at a time: concurrent, but within what a pool can serve. */
export async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}
