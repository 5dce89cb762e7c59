import type { ExitRequest, ExitSelector } from '../../geo/exit-selection.js';
import type { Authorization } from '../auth/authorize.js';
import type { ExitTransport, ExitTransports } from './exit-transport.js';
import { Refusal } from '../refusal.js';

/** Hands out exits for one request: the first pick, then others of the same country. */
export interface ExitAttempts {
  next(): ExitTransport | undefined;
  /** The exit could not be reached; pick another next time. */
  failed(transport: ExitTransport): void;
}

export interface ExitAttemptsOptions {
  selector: ExitSelector;
  transports: ExitTransports;
  maxAttempts: number;
  defaultSessionMinutes: number;
  onExitFailed(): void;
}

/** Names what was asked for, so a client can tell a typo from an exit that is down. */
function noExitHint(request: ExitRequest, hasExits: boolean): string {
  if (!hasExits) return 'No pool of exits is configured on this deployment yet: an admin creates one with POST /v1/pools.';
  const asked: string[] = [];
  if (request.pool !== undefined) asked.push(`pool ${request.pool}`);
  if (request.country !== undefined) asked.push(`country ${request.country}`);
  if (request.city !== undefined) asked.push(`city ${request.city}`);
  if (request.state !== undefined) asked.push(`state ${request.state}`);
  if (request.asn !== undefined) asked.push(`asn ${request.asn}`);
  if (asked.length === 0) return 'No exit in the pools this key may use. Ask your admin to grant a pool with exits.';
  return `No exit for ${asked.join(', ')} in the pools this key may use. Retry later or target less narrowly.`;
}

/**
 * The exits one request may try, in order: the selector's pick (the sticky session's exit
 * when there is one), then other exits of the same country after a failure. The first
 * exit is picked at once so `no_exit` is answered before anything else happens.
 */
export function planExitAttempts(authorization: Authorization, options: ExitAttemptsOptions): ExitAttempts {
  const { grant, target } = authorization;
  const exclude = new Set<string>();
  const request: ExitRequest = {
    pools: grant.pools,
    pool: target.pool,
    country: target.country,
    city: target.city,
    state: target.state,
    asn: target.asn,
    exclude,
    session:
      target.sessionId === undefined
        ? undefined
        : { owner: grant.keyId, id: target.sessionId, ttlMs: (target.sessionMinutes ?? options.defaultSessionMinutes) * 60_000 },
  };
  let tries = 0;
  const pick = (): ExitTransport | undefined => {
    if (tries++ >= options.maxAttempts) return undefined;
    const exit = options.selector.pickExit(request);
    return exit === undefined ? undefined : options.transports.get(exit);
  };
  let first: ExitTransport | undefined = pick();
  if (first === undefined) throw new Refusal('no_exit', 5, undefined, noExitHint(request, options.selector.hasExits()));
  return {
    next() {
      if (first === undefined) return pick();
      const chosen = first;
      first = undefined;
      return chosen;
    },
    failed(transport) {
      options.onExitFailed();
      exclude.add(transport.exit.id);
      options.selector.markExitFailed(transport.exit.id);
    },
  };
}
