import net from 'node:net';

export interface ConnectRateResult {
  tunnelsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
}

/**
 * Opens CONNECT tunnels as fast as `concurrency` clients can for `durationSeconds`: connect
 * to the proxy, CONNECT to a TCP target that answers one line, read it, close.
 */
export async function measureConnectRate(
  proxyPort: number,
  target: string,
  headers: Record<string, string>,
  concurrency: number,
  durationSeconds: number,
): Promise<ConnectRateResult> {
  const request = `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;

  function once(tally: TunnelTally): Promise<void> {
    return new Promise((resolve) => {
      const started = performance.now();
      const socket = net.connect(proxyPort, '127.0.0.1', () => socket.write(request));
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        received += chunk;
        if (received.startsWith('HTTP/1.1 200') && received.includes('ok\n')) {
          tally.succeeded(performance.now() - started);
          socket.destroy();
          resolve();
        } else if (received.includes('\r\n\r\n') && !received.startsWith('HTTP/1.1 200')) {
          tally.failed();
          socket.destroy();
          resolve();
        }
      });
      socket.on('error', () => {
        tally.failed();
        resolve();
      });
      socket.on('close', () => resolve());
    });
  }

  return runTunnelClients(concurrency, durationSeconds, once);
}

/** What one tunnel attempt reports: its setup time, or that it failed. */
export interface TunnelTally {
  succeeded(latencyMs: number): void;
  failed(): void;
}

/** Runs `concurrency` clients, each opening tunnels one after another with `once`, for `durationSeconds`. */
export async function runTunnelClients(concurrency: number, durationSeconds: number, once: (tally: TunnelTally) => Promise<void>): Promise<ConnectRateResult> {
  const latencies: number[] = [];
  let failures = 0;
  const tally: TunnelTally = { succeeded: (latencyMs) => latencies.push(latencyMs), failed: () => failures++ };
  const end = performance.now() + durationSeconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await once(tally);
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
