import type { ExitSelector } from '../../geo/exit-selection.js';
import type { Authorization } from '../auth/authorize.js';
import type { ExitTransport, ExitTransports } from './exit-transport.js';
import { exitRequestFor, noExitRefusal } from '../../access/decide.js';

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

/**
 * The exits one request may try, in order: the selector's pick (the sticky session's exit
 * when there is one), then other exits of the same country after a failure. The first
 * exit is picked at once so `no_exit` is answered before anything else happens.
 */
export function planExitAttempts(authorization: Authorization, options: ExitAttemptsOptions): ExitAttempts {
  const { grant, target } = authorization;
  const exclude = new Set<string>();
  const request = exitRequestFor(grant, target, options.defaultSessionMinutes, exclude);
  let tries = 0;
  const pick = (): ExitTransport | undefined => {
    if (tries++ >= options.maxAttempts) return undefined;
    const exit = options.selector.pickExit(request);
    return exit === undefined ? undefined : options.transports.get(exit);
  };
  let first: ExitTransport | undefined = pick();
  if (first === undefined) throw noExitRefusal(request, options.selector.hasExits());
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
