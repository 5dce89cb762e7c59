import type { KeyGrant } from '../../access/grant.js';

/**
 * The team lockdowns this node has heard of from the feed: team → `notBefore` (epoch ms).
 * A cached grant does not carry a lockdown that came after it was verified, so every
 * decision also asks here; a node that restarts, or starts over in a new epoch, begins
 * with none and learns each lockdown from verify answers (`lockedDown`) instead.
 */
export interface TeamLockdowns {
  lock(teamId: string, notBefore: number): void;
  lift(teamId: string): void;
  /** The grant's key was created before its team's lockdown. */
  covers(grant: KeyGrant): boolean;
  clear(): void;
}

export function createTeamLockdowns(): TeamLockdowns {
  const notBeforeOf = new Map<string, number>();
  return {
    lock: (teamId, notBefore) => void notBeforeOf.set(teamId, notBefore),
    lift: (teamId) => void notBeforeOf.delete(teamId),
    // One map miss on the cached path while no team is locked.
    covers(grant) {
      if (notBeforeOf.size === 0) return false;
      const notBefore = notBeforeOf.get(grant.teamId);
      return notBefore !== undefined && grant.createdAt < notBefore;
    },
    clear: () => notBeforeOf.clear(),
  };
}
