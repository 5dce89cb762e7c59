import type http from 'node:http';
import type { Socket } from 'node:net';
import type { DestinationPolicy } from '../../lib/http/destination-policy.js';
import type { RequestTarget } from '../../lib/http/request-target.js';
import type { Logger } from '../../lib/logger.js';
import type { Authorization, Authorizer } from '../auth/authorize.js';
import type { ClientRequestTarget } from '../auth/credentials.js';
import { planExitAttempts, type ExitAttempts, type ExitAttemptsOptions } from '../egress/exit-attempts.js';
import type { Admission, TrafficLimits } from '../limits/traffic-limits.js';
import { Refusal } from '../refusal.js';
import type { RequestTrace } from './request-trace.js';

/** What a request that may go ahead carries: who it is, where it may go, and its limits. */
export interface Admitted {
  authorization: Authorization;
  attempts: ExitAttempts;
  admission: Admission;
}

/**
 * Credentials, destination policy, exit choice and limits, in that order. Synchronous when
 * every step is (a cached key without shared limits: the common case), a promise
 * otherwise; either way it fails only with a Refusal.
 */
export type Admit = (request: http.IncomingMessage, socket: Socket, target: RequestTarget, isConnect: boolean, trace?: RequestTrace) => Admitted | Promise<Admitted>;

/**
 * Admission in two steps, for SOCKS5, where the credentials come before the destination:
 * each fails only with a Refusal.
 */
export interface StepwiseAdmit {
  /** The login's key and grants, when the client authenticates. */
  authorize(login: ClientRequestTarget, socket: Socket): Authorization | Promise<Authorization>;
  /** Destination policy, exit choice and limits, once the client names where it goes. */
  admitTo(authorization: Authorization, target: RequestTarget): Admitted | Promise<Admitted>;
}

export interface Admitter {
  admit: Admit;
  stepwise: StepwiseAdmit;
}

export interface AdmitterOptions {
  authorizer: Authorizer;
  policy: DestinationPolicy;
  limits: TrafficLimits;
  attempts: ExitAttemptsOptions;
  logger: Logger;
}

const FORBIDDEN = new Refusal('destination_forbidden');
const UNAVAILABLE = new Refusal('auth_unavailable', 1);

export function createAdmitter({ authorizer, policy, limits, attempts: attemptOptions, logger }: AdmitterOptions): Admitter {
  function toRefusal(error: unknown): Refusal {
    if (error instanceof Refusal) return error;
    // A bug or an unexpected failure: the client is refused as if the key could not be checked.
    logger.error({ err: error }, 'unexpected error while authorising');
    return UNAVAILABLE;
  }
  const rethrowAsRefusal = (error: unknown): never => {
    throw toRefusal(error);
  };

  function afterAuthorization(authorization: Authorization, target: RequestTarget, trace: RequestTrace | undefined): Admitted | Promise<Admitted> {
    if (policy.forbids(target.hostname, target.port)) throw FORBIDDEN;
    if (trace !== undefined) return afterAuthorizationTraced(authorization, trace);
    const attempts = planExitAttempts(authorization, attemptOptions);
    const admitting = limits.admit(authorization.grant);
    if (admitting instanceof Promise) return admitting.then((admission) => ({ authorization, attempts, admission }));
    return { authorization, attempts, admission: admitting };
  }

  function afterAuthorizationTraced(authorization: Authorization, trace: RequestTrace): Admitted | Promise<Admitted> {
    const attempts = trace.timed('exit.select', () => planExitAttempts(authorization, attemptOptions)) as ExitAttempts;
    const admitting = trace.timed('limits.admit', () => limits.admit(authorization.grant), (admission): Record<string, string | number> => {
      const remaining = admission.headers.indexOf('X-RateLimit-Remaining');
      return remaining < 0
        ? { 'portcullis.limiter.mode': limits.mode() }
        : { 'portcullis.limiter.mode': limits.mode(), 'portcullis.limiter.remaining': Number(admission.headers[remaining + 1]) };
    });
    if (admitting instanceof Promise) return admitting.then((admission) => ({ authorization, attempts, admission }));
    return { authorization, attempts, admission: admitting };
  }

  // Spelled out three times rather than through a helper taking a closure: `admit` runs on
  // every request.
  return {
    admit(request, socket, target, isConnect, trace) {
      try {
        const decided = authorizer.authorize(request.headers, socket, isConnect, trace);
        const admitted =
          decided instanceof Promise ? decided.then((authorization) => afterAuthorization(authorization, target, trace)) : afterAuthorization(decided, target, trace);
        return admitted instanceof Promise ? admitted.catch(rethrowAsRefusal) : admitted;
      } catch (error) {
        throw toRefusal(error);
      }
    },
    stepwise: {
      authorize(login, socket) {
        try {
          const decided = authorizer.authorizeTarget(login, socket);
          return decided instanceof Promise ? decided.catch(rethrowAsRefusal) : decided;
        } catch (error) {
          throw toRefusal(error);
        }
      },
      admitTo(authorization, target) {
        try {
          const admitted = afterAuthorization(authorization, target, undefined);
          return admitted instanceof Promise ? admitted.catch(rethrowAsRefusal) : admitted;
        } catch (error) {
          throw toRefusal(error);
        }
      },
    },
  };
}
