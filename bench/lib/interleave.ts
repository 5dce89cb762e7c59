/**
 * Runs several contenders in turn, round after round (A, B, C, A, B, C…), so that a slow
 * moment of a shared machine hits them all alike, and summarises each measure as its
 * median with the range.
 */
export async function interleave<C, R>(contenders: readonly C[], rounds: number, measure: (contender: C, round: number) => Promise<R>): Promise<Map<C, R[]>> {
  const results = new Map<C, R[]>(contenders.map((contender) => [contender, []]));
  for (let round = 0; round < rounds; round++) {
    for (const contender of contenders) results.get(contender)!.push(await measure(contender, round));
  }
  return results;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const format = (value: number, digits: number) => (Number.isNaN(value) ? 'n/a' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

/** "13,012 (12,400–13,500)": the median, then the range when there is more than one value. */
export function medianWithRange(values: readonly number[], digits = 0): string {
  const known = values.filter((value) => !Number.isNaN(value));
  if (known.length <= 1) return format(median(values), digits);
  return `${format(median(known), digits)} (${format(Math.min(...known), digits)}–${format(Math.max(...known), digits)})`;
}

/** "1.23×", or empty when either side is missing. */
export function ratio(value: number, baseline: number | undefined): string {
  return baseline === undefined || Number.isNaN(value) || Number.isNaN(baseline) || baseline === 0 ? '' : `${(value / baseline).toFixed(2)}×`;
}
