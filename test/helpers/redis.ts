import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from './ports.js';
import { waitFor } from './deadline.js';

export interface TestRedis {
  url: string;
  port: number;
  /** Stops the server (SIGKILL, like a crash) and waits for its exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  close(): Promise<void>;
}

const ATTEMPTS = 5;

/**
 * Starts a private redis-server on a free port; nothing is shared with the machine's Redis.
 * The port is only free "a moment ago", so a server that cannot bind it is retried on
 * another, and the server is only trusted once it answers PING itself.
 */
export async function startRedis({ args = [] }: { args?: string[] } = {}): Promise<TestRedis> {
  let child: ChildProcess | undefined;
  let port = 0;

  async function launch(): Promise<boolean> {
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { stdio: 'ignore' });
    child = server;
    const outcome = await waitFor(async () => (server.exitCode !== null || server.signalCode !== null ? 'exited' : (await answersPing(port)) && 'up'), {
      what: `redis-server on port ${port}`,
    });
    return outcome === 'up';
  }

  async function start(): Promise<void> {
    if (!(await launch())) throw new Error(`redis-server could not start again on port ${port}`);
  }

  async function stop(): Promise<void> {
    const current = child;
    child = undefined;
    if (current === undefined || current.exitCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGKILL');
    await exited;
  }

  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    if (await launch()) break;
    if (attempt === ATTEMPTS) throw new Error('redis-server could not bind a free port');
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop, start, close: stop };
}

/** True when a Redis server answers PING on the port (and not some other server). */
export function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(1_000, () => socket.destroy());
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.startsWith('+PONG'));
      }
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}
