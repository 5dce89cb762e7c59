/**
 * Constant proxied traffic for the revocation benchmark, in its own process so that it
 * does not share an event loop with what it measures: `clients` keep-alive loops spread
 * over the given proxy ports, each sending GET `url` with the key. Prints the number of
 * 200 answers so far as a JSON line every 100 ms; stops on SIGTERM.
 *
 * usage: proxied-traffic.ts <key> <url> <clients> <port> [port…]
 */
import http from 'node:http';
import { bearer, proxyRequest } from '../../test/helpers/proxy-client.js';

const [key, url, clients, ...ports] = process.argv.slice(2);
if (key === undefined || url === undefined || clients === undefined || ports.length === 0) throw new Error('usage: proxied-traffic.ts <key> <url> <clients> <port> [port…]');
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
let running = true;
let completed = 0;

const report = setInterval(() => process.stdout.write(`${JSON.stringify({ completed })}\n`), 100);
const loops = Array.from({ length: Number(clients) }, async (_, i) => {
  const port = Number(ports[i % ports.length]);
  while (running) {
    const response = await proxyRequest(port, url, bearer(key), { agent }).catch(() => undefined);
    if (response?.status === 200) completed++;
  }
});
process.once('SIGTERM', async () => {
  running = false;
  await Promise.all(loops);
  clearInterval(report);
  agent.destroy();
  process.exit(0);
});
