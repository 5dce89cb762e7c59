/**
 * Shutdown's middle step: waits until `isDrained()` or `deadlineMs` has passed, calling
 * `onTick` on the way (typically to close keep-alive connections that have gone idle).
 */
export async function drain(isDrained: () => boolean, deadlineMs: number, onTick: () => void): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!isDrained() && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    onTick();
  }
}
