import { Agent, type Dispatcher } from 'undici';
import { IdleFirstPool } from './idle-first-pool.js';
import type { Exit } from '../../contract/node-api.js';
import type { DestinationPolicy } from '../../lib/http/destination-policy.js';

/** How to reach an exit: who sends its plain-HTTP requests, its address and its credentials. */
export interface ExitTransport {
  exit: Exit;
  isDirect: boolean;
  /**
   * Sends plain-HTTP requests over keep-alive connections: for a direct exit, to each
   * target (one pool per target, made on first use); for an upstream exit, to the exit,
   * with the target in absolute form.
   */
  dispatcher: Dispatcher;
  /** The upstream exit's origin (`http://host:port`); empty for a direct exit. */
  origin: string;
  host: string;
  port: number;
  /** Basic credentials for an upstream exit, if its URL has them. */
  proxyAuthorization: string | undefined;
}

export interface ExitTransportsOptions {
  policy: DestinationPolicy;
  /** How long an idle keep-alive connection to an exit or a target is kept. */
  keepAliveMs: number;
  connectTimeoutMs: number;
}

export interface ExitTransports {
  get(exit: Exit): ExitTransport;
  /** Drops transports of exits that are gone after a pool refresh. */
  retain(exitIds: ReadonlySet<string>): void;
  close(): Promise<void>;
}

/**
 * One dispatcher per exit, made once and reused by every request, so the hot path makes no
 * clients and keeps warm connections to each exit. undici's HTTP/1.1 client costs about
 * two thirds of node:http's per proxied request (measured in bench/).
 */
export function createExitTransports({ policy, keepAliveMs, connectTimeoutMs }: ExitTransportsOptions): ExitTransports {
  const clientOptions = { keepAliveTimeout: keepAliveMs, keepAliveMaxTimeout: keepAliveMs, headersTimeout: 0, bodyTimeout: 0 };
  // Direct egress resolves each name through the destination policy and connects to the checked address.
  const direct = new Agent({
    ...clientOptions,
    connect: { lookup: policy.lookup, timeout: connectTimeoutMs },
    factory: (origin, options) => new IdleFirstPool(origin, options),
  });
  const transports = new Map<string, ExitTransport>();

  function create(exit: Exit): ExitTransport {
    if (exit.url === 'direct') return { exit, isDirect: true, dispatcher: direct, origin: '', host: '', port: 0, proxyAuthorization: undefined };
    const url = new URL(exit.url);
    const credentials = url.username === '' ? undefined : `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    const origin = `http://${url.host}`;
    return {
      exit,
      isDirect: false,
      dispatcher: new IdleFirstPool(origin, { ...clientOptions, connect: { timeout: connectTimeoutMs } }),
      origin,
      host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: Number(url.port),
      proxyAuthorization: credentials === undefined ? undefined : `Basic ${Buffer.from(credentials).toString('base64')}`,
    };
  }

  function dispose(transport: ExitTransport): void {
    if (transport.dispatcher !== direct) void transport.dispatcher.destroy().catch(() => undefined);
  }

  return {
    get(exit) {
      let transport = transports.get(exit.id);
      if (transport === undefined || transport.exit.url !== exit.url) {
        if (transport !== undefined) dispose(transport);
        transport = create(exit);
        transports.set(exit.id, transport);
      }
      return transport;
    },
    retain(exitIds) {
      for (const [id, transport] of transports) {
        if (exitIds.has(id)) continue;
        dispose(transport);
        transports.delete(id);
      }
    },
    async close() {
      for (const transport of transports.values()) dispose(transport);
      transports.clear();
      await direct.destroy().catch(() => undefined);
    },
  };
}
