import autocannon from 'autocannon';

export interface LoadOptions {
  title: string;
  url: string;
  connections: number;
  durationSeconds: number;
  method?: 'GET' | 'POST' | 'PATCH';
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Makes each request unique (a fresh name in a POST body, say). */
  setupRequest?: (request: { body?: string; path?: string }) => { body?: string; path?: string };
}

export interface LoadResult {
  title: string;
  connections: number;
  /** Successful (2xx) requests per second only: a fast error never counts as throughput. */
  okPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** One autocannon run, bounded by `durationSeconds`, against a loopback target. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if (!/^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(options.url)) throw new Error(`benchmarks only target loopback, not ${options.url}`);
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    method: options.method ?? 'GET',
    headers: options.headers ?? {},
    ...(options.body !== undefined && { body: options.body }),
    ...(options.path !== undefined || options.setupRequest !== undefined
      ? {
          requests: [
            {
              ...(options.path !== undefined && { path: options.path }),
              ...(options.setupRequest !== undefined && { setupRequest: options.setupRequest as never }),
            },
          ],
        }
      : {}),
    timeout: 10,
  });
  return {
    title: options.title,
    connections: options.connections,
    okPerSecond: result['2xx'] / (result.duration || options.durationSeconds),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

export function loadRow(result: LoadResult, extra: Record<string, string | number> = {}): Record<string, string | number> {
  return {
    scenario: result.title,
    conns: result.connections,
    'req/s (2xx)': Math.round(result.okPerSecond),
    'p50 ms': result.p50Ms,
    'p99 ms': result.p99Ms,
    'non-2xx': result.non2xx + result.errors + result.timeouts,
    ...extra,
  };
}
