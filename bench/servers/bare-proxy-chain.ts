/** The baseline: proxy-chain as it comes, no authentication, no upstream. */
import { Server } from 'proxy-chain';

const server = new Server({ port: 0, host: '127.0.0.1' });
await server.listen();
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
