import http from 'node:http';
import { bearer, proxyRequest } from './proxy-client.js';

/** One proxied request as a client saw it. */
export interface TrafficSample {
  key: string;
  port: number;
  startedAt: number;
  finishedAt: number;
  /** 0 when no answer came (connection refused or reset). */
  status: number;
  /** X-Portcullis-Error, or the socket error's code. */
  code: string | undefined;
}

export interface TrafficOptions {
  /** Proxy ports, used in turn. */
  ports: () => number[];
  /** The key for the n-th request. */
  keyFor: (n: number) => string;
  url: string;
  /** Requests in flight at once. */
  concurrency: number;
}

export interface Traffic {
  samples: TrafficSample[];
  /** Stops sending and resolves once the requests in flight have answered. */
  stop(): Promise<TrafficSample[]>;
}

/** Keeps proxied requests flowing in the background and records how each one went. */
export function startTraffic({ ports, keyFor, url, concurrency }: TrafficOptions): Traffic {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const samples: TrafficSample[] = [];
  let stopped = false;
  let sent = 0;

  async function worker(): Promise<void> {
    while (!stopped) {
      const n = sent++;
      const key = keyFor(n);
      const available = ports();
      const port = available[n % available.length]!;
      const startedAt = Date.now();
      try {
        const response = await proxyRequest(port, url, bearer(key), { agent });
        samples.push({ key, port, startedAt, finishedAt: Date.now(), status: response.status, code: response.headers['x-portcullis-error'] as string | undefined });
      } catch (error) {
        samples.push({ key, port, startedAt, finishedAt: Date.now(), status: 0, code: (error as NodeJS.ErrnoException).code });
        // A node that is down refuses at once: do not spin on it.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  const workers = Array.from({ length: concurrency }, worker);
  return {
    samples,
    async stop() {
      stopped = true;
      await Promise.all(workers);
      agent.destroy();
      return samples;
    },
  };
}
