/**
 * Heap bytes per cached key in a whole proxy node, measured in a process of its own (run
 * with --expose-gc): a node in this process, then one proxied request per key through it,
 * so every key is verified, cached, admitted and metered as in production. Prints one
 * JSON line.
 *
 * usage: node --expose-gc --import tsx bench/lib/node-memory.ts <control plane url> <node token> <redis url> <origin url> <keys file>
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRedisSubscriber } from '../../lib/feed/redis-bus.js';
import { createLogger } from '../../lib/logger.js';
import { bearer, proxyRequest } from '../../test/helpers/proxy-client.js';
import { waitFor } from '../../test/helpers/deadline.js';
import { startTestProxyNode } from '../../test/helpers/proxy-node.js';

const [controlPlaneUrl, nodeToken, redisUrl, originUrl, keysFile] = process.argv.slice(2);
if (keysFile === undefined) throw new Error('usage: node-memory.ts <control plane url> <node token> <redis url> <origin url> <keys file>');
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const keys = readFileSync(keysFile, 'utf8').trim().split('\n');

function heapUsed(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

const node = await startTestProxyNode({
  controlPlaneUrl: controlPlaneUrl!,
  nodeToken: nodeToken!,
  subscriber: createRedisSubscriber({ url: redisUrl!, logger: createLogger({ level: 'silent', name: 'bench' }) }),
  cache: { maxEntries: keys.length + 1_000, ttlMs: 3_600_000, negativeTtlMs: 10_000, maxNegativeEntries: 10_000, unknownPerSecond: 100_000, unknownPerSecondPerClient: 100_000, maxVerifyInFlight: 10_000 },
  stalenessBoundMs: 3_600_000,
});
// A warm-up key, so the node's own start-up allocations are in the baseline.
await proxyRequest(node.port, originUrl!, bearer(keys[0]!));
const before = heapUsed();
const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
let next = 1;
let failed = 0;
await Promise.all(
  Array.from({ length: 50 }, async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const response = await proxyRequest(node.port, originUrl!, bearer(key), { agent });
      if (response.status !== 200) failed++;
    }
  }),
);
agent.destroy();
// What a connection holds (the keys it used, in the connection registry) goes with it.
await waitFor(() => node.openConnections() === 0, { what: 'the client connections to close' });
await node.flushUsage();
const after = heapUsed();
const cached = keys.length - 1;
process.stdout.write(`${JSON.stringify({ keys: cached, failed, bytesPerKey: (after - before) / cached, heapMb: (after - before) / 1e6 })}\n`);
await node.close();
process.exit(0);
