import http from 'node:http';
import type { Exit } from '../../contract/node-api.js';
import type { DestinationPolicy } from '../../lib/http/destination-policy.js';

/** How to reach an exit: a keep-alive agent, its address and its credentials. */
export interface ExitTransport {
  exit: Exit;
  isDirect: boolean;
  agent: http.Agent;
  host: string;
  port: number;
  /** Basic credentials for an upstream exit, if its URL has them. */
  proxyAuthorization: string | undefined;
}

export interface ExitTransportsOptions {
  policy: DestinationPolicy;
  /** Idle upstream sockets kept per exit, sized to the expected concurrency. */
  maxIdleSockets: number;
}

export interface ExitTransports {
  get(exit: Exit): ExitTransport;
  /** Drops transports of exits that are gone after a pool refresh. */
  retain(exitIds: ReadonlySet<string>): void;
  close(): void;
}

/**
 * One keep-alive agent per exit, made once and reused by every request, so the hot path
 * allocates no agents and keeps warm sockets to each exit.
 */
export function createExitTransports({ policy, maxIdleSockets }: ExitTransportsOptions): ExitTransports {
  const agentOptions: http.AgentOptions = { keepAlive: true, maxSockets: Infinity, maxFreeSockets: maxIdleSockets, scheduling: 'lifo', timeout: 60_000 };
  const directAgent = new http.Agent({ ...agentOptions, lookup: policy.lookup } as http.AgentOptions);
  const transports = new Map<string, ExitTransport>();

  function create(exit: Exit): ExitTransport {
    if (exit.url === 'direct') return { exit, isDirect: true, agent: directAgent, host: '', port: 0, proxyAuthorization: undefined };
    const url = new URL(exit.url);
    const credentials = url.username === '' ? undefined : `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    return {
      exit,
      isDirect: false,
      agent: new http.Agent(agentOptions),
      host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: Number(url.port),
      proxyAuthorization: credentials === undefined ? undefined : `Basic ${Buffer.from(credentials).toString('base64')}`,
    };
  }

  return {
    get(exit) {
      let transport = transports.get(exit.id);
      if (transport === undefined || transport.exit.url !== exit.url) {
        if (transport !== undefined && transport.agent !== directAgent) transport.agent.destroy();
        transport = create(exit);
        transports.set(exit.id, transport);
      }
      return transport;
    },
    retain(exitIds) {
      for (const [id, transport] of transports) {
        if (exitIds.has(id)) continue;
        if (transport.agent !== directAgent) transport.agent.destroy();
        transports.delete(id);
      }
    },
    close() {
      for (const transport of transports.values()) if (transport.agent !== directAgent) transport.agent.destroy();
      transports.clear();
      directAgent.destroy();
    },
  };
}
