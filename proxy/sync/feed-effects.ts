import { isKnownEvent, type FeedEvent } from '../../contract/feed.js';
import { MAX_REPORTED_REVOCATIONS, type AppliedRevocation } from '../../contract/node-api.js';
import type { ExitSelector } from '../../geo/exit-selection.js';
import type { Logger } from '../../lib/logger.js';
import { SpanKind, type Tracing } from '../../lib/tracing/tracing.js';
import type { KeyCache } from '../auth/key-cache.js';
import type { ConnectionRegistry } from '../ingress/connection-registry.js';
import type { TrafficLimits } from '../limits/traffic-limits.js';
import type { VerifyResult } from './node-api-client.js';

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
  /**
   * A new feed epoch: every decision taken in the old one is forgotten, pools are fetched
   * again (another database may have others), and each key with connections still open is
   * asked about again — those the control plane now refuses are closed, since their
   * revocation may be among the events the node will never see. Logs how many connections
   * were closed, and how many keys could not be asked about (the control plane could not
   * be reached: their connections stay open).
   */
  startOver(): Promise<void>;
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
  /** Asks the control plane about one key, bypassing the cache. */
  verify(hashHex: string): Promise<VerifyResult>;
  /** The epoch the node is in now. */
  epoch(): string | undefined;
  now(): number;
  logger: Logger;
  /** An event carrying its call's trace context is applied in a span of that trace. */
  tracing: Tracing;
  node: { nodeId: string; region: string };
}

export function createFeedEffects(options: FeedEffectsOptions): FeedEffects {
  const { cache, limits, connections, selector, onRevocationApplied, onPoolsChanged, logger } = options;
  // Logged once per kind: a newer control plane keeps writing the kinds it knows.
  const unknownKindsLogged = new Set<string>();
  let applied: AppliedRevocation[] = [];

  /** The application's span, from the event's arrival to now, below the revoke call's trace. */
  function recordApplication(event: { kind: string; seq: number; at: number; keyId: string | null; traceparent?: string }, receivedAt: number, closedConnections: number): void {
    const parent = options.tracing.parentFrom(event.traceparent);
    if (parent === undefined) return;
    const span = options.tracing.startSpan('revocation.apply', {
      kind: SpanKind.CONSUMER,
      parent,
      attributes: {
        'portcullis.node_id': options.node.nodeId,
        'portcullis.region': options.node.region,
        'portcullis.seq': event.seq,
        'portcullis.event': event.kind,
        'portcullis.key_id': event.keyId ?? '',
        'portcullis.closed_connections': closedConnections,
        'portcullis.delay_ms': Math.max(0, receivedAt - event.at),
      },
    });
    span.end();
  }

  return {
    apply(event, receivedAt) {
      if (!isKnownEvent(event)) {
        cache.forgetAll(event.seq);
        if (unknownKindsLogged.size < 100 && !unknownKindsLogged.has(event.kind)) {
          unknownKindsLogged.add(event.kind);
          logger.warn({ kind: event.kind }, 'feed event of a kind this node does not know: every cached key is verified again (upgrade the node)');
        }
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
      if (options.tracing.enabled && event.traceparent !== undefined) recordApplication(event, receivedAt, closedConnections);
      if (applied.length < MAX_REPORTED_REVOCATIONS) applied.push({ seq: event.seq, appliedAt: receivedAt, closedConnections });
      onRevocationApplied();
    },
    takeApplied() {
      const taken = applied;
      applied = [];
      return taken;
    },
    async startOver() {
      cache.clear();
      limits.clearTeams();
      onPoolsChanged();
      // Acks name seqs of the old epoch: they would prove nothing in the new one.
      applied = [];
      const epoch = options.epoch();
      const outcomes = await Promise.allSettled(
        connections.keysInUse().map(async (keyHash) => {
          const { key, epoch: answeredIn } = await options.verify(keyHash);
          // Another new epoch already: the start over it causes checks again.
          if (answeredIn !== epoch) return 0;
          const refused = key === null || key.status === 'revoked' || key.overQuota || (key.expiresAt !== null && Date.parse(key.expiresAt) <= options.now());
          return refused ? connections.closeKey(keyHash) : 0;
        }),
      );
      let closed = 0;
      let unchecked = 0;
      for (const outcome of outcomes) {
        if (outcome.status === 'fulfilled') closed += outcome.value;
        else unchecked++;
      }
      logger.warn({ epoch, closed, unchecked }, 'started over in the new epoch: connections of keys it refuses are closed');
    },
  };
}
