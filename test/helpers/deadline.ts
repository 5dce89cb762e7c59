/**
 * The one place tests take their time limits from. Slow machines raise every limit at
 * once with PORTCULLIS_TEST_TIME_SCALE (a multiplier, default 1). Tests wait for
 * conditions with `waitFor`, never with a fixed sleep.
 */

const scale = (() => {
  const raw = process.env.PORTCULLIS_TEST_TIME_SCALE;
  const value = raw === undefined ? 1 : Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`PORTCULLIS_TEST_TIME_SCALE must be a positive number, got "${raw}"`);
  }
  return value;
})();

/** A time limit in milliseconds, stretched by PORTCULLIS_TEST_TIME_SCALE. */
export function deadline(milliseconds: number): number {
  return Math.round(milliseconds * scale);
}

export interface WaitOptions {
  /** What is being waited for, used in the failure message. */
  what: string;
  /** Unscaled limit; defaults to 10 s. */
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Polls `check` until it returns a value other than false/undefined, and returns it.
 * A check that throws is retried; its last error is reported if the deadline passes.
 */
export async function waitFor<T>(
  check: () => T | false | undefined | Promise<T | false | undefined>,
  { what, timeoutMs = 10_000, intervalMs = 10 }: WaitOptions,
): Promise<T> {
  const limit = deadline(timeoutMs);
  const end = Date.now() + limit;
  let lastError: unknown;
  for (;;) {
    try {
      const result = await check();
      if (result !== false && result !== undefined) return result;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > end) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${limit} ms waiting for ${what}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves with `promise`, or rejects if it has not settled within the (scaled) limit. */
export async function within<T>(promise: Promise<T>, { what, timeoutMs = 10_000 }: Omit<WaitOptions, 'intervalMs'>): Promise<T> {
  const limit = deadline(timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${limit} ms waiting for ${what}`)), limit);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
