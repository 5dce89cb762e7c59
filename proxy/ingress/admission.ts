import type http from 'node:http';
import type { Socket } from 'node:net';
import type { DestinationPolicy } from '../../lib/http/destination-policy.js';
import type { RequestTarget } from '../../lib/http/request-target.js';
import type { Logger } from '../../lib/logger.js';
import type { Authorization, Authorizer } from '../auth/authorize.js';
import { planExitAttempts, type ExitAttempts, type ExitAttemptsOptions } from '../egress/exit-attempts.js';
import type { Admission, TrafficLimits } from '../limits/traffic-limits.js';
import { Refusal } from '../refusal.js';

/** What a request that may go ahead carries: who it is, where it may go, and its limits. */
export interface Admitted {
  authorization: Authorization;
  attempts: ExitAttempts;
  admission: Admission;
}

/** Credentials, destination policy, exit choice and limits, in that order; rejects only with a Refusal. */
export type Admit = (request: http.IncomingMessage, socket: Socket, target: RequestTarget, isConnect: boolean) => Promise<Admitted>;

export interface AdmitterOptions {
  authorizer: Authorizer;
  policy: DestinationPolicy;
  limits: TrafficLimits;
  attempts: ExitAttemptsOptions;
  logger: Logger;
}

export function createAdmitter({ authorizer, policy, limits, attempts: attemptOptions, logger }: AdmitterOptions): Admit {
  async function decide(request: http.IncomingMessage, socket: Socket, target: RequestTarget, isConnect: boolean): Promise<Admitted> {
    const decided = authorizer.authorize(request.headers, socket, isConnect);
    const authorization = decided instanceof Promise ? await decided : decided;
    if (policy.forbids(target.hostname, target.port)) throw new Refusal('destination_forbidden');
    const attempts = planExitAttempts(authorization, attemptOptions);
    const admitting = limits.admit(authorization.grant);
    return { authorization, attempts, admission: admitting instanceof Promise ? await admitting : admitting };
  }

  return (request, socket, target, isConnect) =>
    decide(request, socket, target, isConnect).catch((error: unknown) => {
      if (error instanceof Refusal) throw error;
      // A bug or an unexpected failure: the client is refused as if the key could not be checked.
      logger.error({ err: error }, 'unexpected error while authorising');
      throw new Refusal('auth_unavailable', 1);
    });
}
