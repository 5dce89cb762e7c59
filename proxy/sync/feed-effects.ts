import { isKnownEvent, type FeedEvent } from '../../contract/feed.js';
import { MAX_REPORTED_REVOCATIONS, type AppliedRevocation } from '../../contract/node-api.js';
import type { ExitSelector } from '../../geo/exit-selection.js';
import type { KeyCache } from '../auth/key-cache.js';
import type { ConnectionRegistry } from '../ingress/connection-registry.js';
import type { TrafficLimits } from '../limits/traffic-limits.js';

/**
 * What a feed event does on a node (DESIGN "Revocation protocol", step 3): the key leaves
 * the cache, traffic it authorised ends, and a revocation is remembered until the next
 * report tells the control plane it was applied here. A pool change makes the node fetch
 * its pools at once; a kind this version does not know makes it forget every cached
 * decision (the rule in contract/feed.ts).
 */
export interface FeedEffects {
  apply(event: FeedEvent, receivedAt: number): void;
  /** Revocations applied since the last call, for the node's report. */
  takeApplied(): AppliedRevocation[];
}

export interface FeedEffectsOptions {
  cache: KeyCache;
  limits: TrafficLimits;
  connections: ConnectionRegistry;
  selector: ExitSelector;
  /** A revocation or rotation was applied: worth reporting soon. */
  onRevocationApplied(): void;
  /** Pools or their exits changed on the control plane. */
  onPoolsChanged(): void;
  /** An event kind from a newer control plane: every cached decision was dropped. */
  onUnknownKind(kind: string): void;
}

export function createFeedEffects({ cache, limits, connections, selector, onRevocationApplied, onPoolsChanged, onUnknownKind }: FeedEffectsOptions): FeedEffects {
  let applied: AppliedRevocation[] = [];

  return {
    apply(event, receivedAt) {
      if (!isKnownEvent(event)) {
        cache.forgetAll(event.seq);
        onUnknownKind(event.kind);
        return;
      }
      if (event.kind === 'pools.changed') return onPoolsChanged();
      if (event.keyHash === null) {
        // About a whole team: its quota was used up, or changed.
        if (event.kind === 'quota.exceeded') {
          limits.markTeamOverQuota(event.teamId);
          connections.closeTunnels({ teamId: event.teamId });
        } else {
          limits.clearTeam(event.teamId);
          cache.forgetTeam(event.teamId);
        }
        return;
      }
      cache.applyEvent({ kind: event.kind, seq: event.seq, keyHash: event.keyHash });
      // A tunnel opened before the quota ran out would otherwise stream on without limit.
      if (event.kind === 'quota.exceeded') connections.closeTunnels({ keyHash: event.keyHash });
      if (event.kind !== 'key.revoked' && event.kind !== 'key.rotated') return;
      const closedConnections = connections.closeKey(event.keyHash);
      if (event.kind === 'key.revoked' && event.keyId !== null) selector.dropSessions(event.keyId);
      if (applied.length < MAX_REPORTED_REVOCATIONS) applied.push({ seq: event.seq, appliedAt: receivedAt, closedConnections });
      onRevocationApplied();
    },
    takeApplied() {
      const taken = applied;
      applied = [];
      return taken;
    },
  };
}
