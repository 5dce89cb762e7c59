import type { UsageEntry } from '../../contract/node-api.js';
import { createLogger } from '../../lib/logger.js';
import { createNodeApiClient } from '../../proxy/sync/node-api-client.js';

export interface ContentionOptions {
  controlPlaneUrl: string;
  nodeToken: string;
  keys: { id: string; teamId: string }[];
  /** Node ids that report; every tick, all of them report for every key at once. */
  nodeIds: string[];
  intervalMs: number;
  durationMs: number;
}

export interface ContentionResult {
  batches: number;
  /** Failed batches by why they failed (the control plane's error, or the transport's). */
  failures: Map<string, number>;
  /** Bytes (in + out) sent per key id, over the batches the control plane accepted. */
  sent: Map<string, number>;
  /** How long each accepted batch took to be answered. */
  latenciesMs: number[];
}

/**
 * Nodes reporting usage for the same keys at the same moments, as a fleet does every flush
 * interval: each node lists the keys in its own order, as nodes meet them in their own.
 * Batches go through the node API client nodes use.
 */
export async function reportConcurrently(options: ContentionOptions): Promise<ContentionResult> {
  const logger = createLogger({ level: 'silent', name: 'contention' });
  const api = createNodeApiClient({ baseUrls: [options.controlPlaneUrl], nodeToken: options.nodeToken, timeoutMs: 10_000, logger });
  const result: ContentionResult = { batches: 0, failures: new Map(), sent: new Map(), latenciesMs: [] };
  const nextBatch = new Map(options.nodeIds.map((nodeId) => [nodeId, 1]));
  const started = Date.now();
  for (let tick = 0; Date.now() - started < options.durationMs; tick++) {
    const tickStarted = Date.now();
    await Promise.all(
      options.nodeIds.map(async (nodeId, n) => {
        const keys = n % 2 === 0 ? options.keys : [...options.keys].reverse();
        const rotated = [...keys.slice(tick % keys.length), ...keys.slice(0, tick % keys.length)];
        const entries: UsageEntry[] = rotated.map((key, i) => ({ keyId: key.id, teamId: key.teamId, bytesIn: 1 + ((tick + i) % 7), bytesOut: 10 + n, requests: 1, tunnels: 0 }));
        const batch = nextBatch.get(nodeId)!;
        nextBatch.set(nodeId, batch + 1);
        result.batches++;
        const sentAt = performance.now();
        try {
          const answer = await api.sendUsage({ nodeId, batch, entries });
          if (answer.duplicate) throw new Error('duplicate');
          result.latenciesMs.push(performance.now() - sentAt);
          for (const entry of entries) result.sent.set(entry.keyId, (result.sent.get(entry.keyId) ?? 0) + entry.bytesIn + entry.bytesOut);
        } catch (error) {
          const reason = (error as Error).message;
          result.failures.set(reason, (result.failures.get(reason) ?? 0) + 1);
        }
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, options.intervalMs - (Date.now() - tickStarted))));
  }
  return result;
}
