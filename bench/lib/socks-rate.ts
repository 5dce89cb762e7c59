import net from 'node:net';
import type { ConnectRateResult } from './connect-rate.js';

/**
 * Opens SOCKS5 tunnels as fast as `concurrency` clients can for `durationSeconds`, each the
 * way curl does it, one round trip per step: connect, greeting, username/password login,
 * CONNECT to an IPv4 TCP target that answers one line, read it, close. The same shape as
 * `measureConnectRate`, so the two rates sit side by side.
 */
export async function measureSocksRate(
  proxyPort: number,
  target: { host: string; port: number },
  login: { username: string; password: string },
  concurrency: number,
  durationSeconds: number,
): Promise<ConnectRateResult> {
  const latencies: number[] = [];
  let failures = 0;
  const end = performance.now() + durationSeconds * 1000;
  const greeting = Buffer.from([0x05, 0x01, 0x02]);
  const username = Buffer.from(login.username, 'latin1');
  const password = Buffer.from(login.password, 'latin1');
  const credentials = Buffer.concat([Buffer.from([0x01, username.length]), username, Buffer.from([password.length]), password]);
  const request = Buffer.from([0x05, 0x01, 0x00, 0x01, ...target.host.split('.').map(Number), target.port >> 8, target.port & 0xff]);
  // What the node answers at each step, and what the client sends next.
  const steps = [
    { answer: Buffer.from([0x05, 0x02]), next: credentials },
    { answer: Buffer.from([0x01, 0x00]), next: request },
    { answer: Buffer.from([0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]), next: undefined },
  ];

  function once(): Promise<void> {
    return new Promise((resolve) => {
      const started = performance.now();
      const socket = net.connect(proxyPort, '127.0.0.1', () => socket.write(greeting));
      let received = Buffer.alloc(0);
      let step = 0;
      const fail = () => {
        failures++;
        socket.destroy();
        resolve();
      };
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        while (step < steps.length) {
          const { answer, next } = steps[step]!;
          if (received.length < answer.length) return;
          if (!received.subarray(0, answer.length).equals(answer)) return fail();
          received = received.subarray(answer.length);
          step++;
          if (next !== undefined) socket.write(next);
        }
        if (received.toString('latin1').includes('ok\n')) {
          latencies.push(performance.now() - started);
          socket.destroy();
          resolve();
        }
      });
      socket.on('error', fail);
      socket.on('close', () => resolve());
    });
  }

  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await once();
    }),
  );
  latencies.sort((a, b) => a - b);
  return {
    tunnelsPerSecond: latencies.length / durationSeconds,
    p50Ms: latencies[Math.floor(latencies.length / 2)] ?? NaN,
    p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    failures,
  };
}
