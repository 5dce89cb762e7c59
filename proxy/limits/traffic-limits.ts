import type { Redis } from 'ioredis';
import { createConcurrencyLimiter, type NodeSlots } from './concurrency-limiter.js';
import type { KeyGrant } from '../../access/grant.js';
import { createRateLimiter, type LimiterMode, type RateDecision } from './rate-limiter.js';
import { Refusal } from '../../access/refusal.js';
import { isOverQuota, quotaRefusal, startOfNextMonth } from '../../access/decide.js';

/**
 * Whether an authorised request may go ahead now: the monthly quota, the request rate and
 * the concurrency cap, in that order. Admission gives back the X-RateLimit-* headers to
 * send and a release to call when the request or tunnel ends.
 */
export interface Admission {
  /** Raw header pairs [name, value, ...] for the response or the CONNECT reply. */
  headers: string[];
  release(): void;
}

export interface TrafficLimits {
  /** Synchronous for keys without limits (the common case), a promise otherwise. */
  admit(grant: KeyGrant): Admission | Promise<Admission>;
  markTeamOverQuota(teamId: string): void;
  clearTeam(teamId: string): void;
  /** Forgets every team's over-quota mark (a new feed epoch: verify answers tell it again). */
  clearTeams(): void;
  mode(): LimiterMode;
  close(): void;
}

export interface TrafficLimitsOptions {
  redis: Redis | undefined;
  /** This process's identity in the region's Redis (the node id, and the worker's number when it has several). */
  nodeId: string;
  now(): number;
  /** Live processes in the region: local shares of regional limits while Redis is down. */
  regionNodes(): number;
  /** The node's per-node concurrency slots when it runs several workers (counted by the primary). */
  nodeSlots?: NodeSlots | undefined;
  cooldownMs: number;
  onModeChange(mode: LimiterMode): void;
  onDecision(result: 'allowed' | 'rate_limited' | 'concurrency_exceeded' | 'quota_exceeded'): void;
}

const UNLIMITED: Admission = { headers: [], release: () => {} };

function rateHeaders(decision: RateDecision): string[] {
  return [
    'X-RateLimit-Limit', String(decision.limit),
    'X-RateLimit-Remaining', String(decision.remaining),
    'X-RateLimit-Reset', String(decision.resetSeconds),
  ];
}

export function createTrafficLimits(options: TrafficLimitsOptions): TrafficLimits {
  const { now } = options;
  const rates = createRateLimiter({ redis: options.redis, now, regionNodes: options.regionNodes, cooldownMs: options.cooldownMs, onModeChange: options.onModeChange });
  const concurrency = createConcurrencyLimiter({ redis: options.redis, nodeId: options.nodeId, regionNodes: options.regionNodes, nodeSlots: options.nodeSlots, entryTtlMs: 30_000 });
  // Teams over their monthly quota, until the month ends.
  const overQuotaTeams = new Map<string, number>();

  function refuseOverQuota(): Refusal {
    options.onDecision('quota_exceeded');
    return quotaRefusal(now());
  }

  function afterRate(grant: KeyGrant, decision: RateDecision | undefined): Admission | Promise<Admission> {
    const headers = decision === undefined ? [] : rateHeaders(decision);
    if (decision !== undefined && !decision.allowed) {
      options.onDecision('rate_limited');
      throw new Refusal('rate_limited', decision.retryAfterSeconds, Object.fromEntries(pairs(headers)));
    }
    if (grant.concurrency === null) {
      options.onDecision('allowed');
      return { headers, release: UNLIMITED.release };
    }
    return concurrency.acquire(grant.keyId, grant.concurrency).then(
      (release) => {
        options.onDecision('allowed');
        return { headers, release };
      },
      (error: unknown) => {
        options.onDecision('concurrency_exceeded');
        throw error;
      },
    );
  }

  /** Stays synchronous while the rate decision is (a lease) and no concurrency cap applies. */
  function admitLimited(grant: KeyGrant): Admission | Promise<Admission> {
    if (grant.rateLimit === null) return afterRate(grant, undefined);
    const decision = rates.check(grant.keyId, grant.rateLimit);
    return decision instanceof Promise ? decision.then((resolved) => afterRate(grant, resolved)) : afterRate(grant, decision);
  }

  return {
    admit(grant) {
      if (isOverQuota(grant, now())) throw refuseOverQuota();
      const teamUntil = overQuotaTeams.get(grant.teamId);
      if (teamUntil !== undefined) {
        if (now() < teamUntil) throw refuseOverQuota();
        overQuotaTeams.delete(grant.teamId);
      }
      if (grant.rateLimit === null && grant.concurrency === null) return UNLIMITED;
      return admitLimited(grant);
    },
    markTeamOverQuota(teamId) {
      overQuotaTeams.set(teamId, startOfNextMonth(now()));
    },
    clearTeams() {
      overQuotaTeams.clear();
    },
    clearTeam(teamId) {
      overQuotaTeams.delete(teamId);
    },
    mode: () => rates.mode(),
    close() {
      concurrency.close();
    },
  };
}

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}
