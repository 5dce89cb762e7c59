import type { FastifyInstance } from 'fastify';
import { fail } from '../errors.js';
import type { Database, Queryable } from '../db/database.js';
import { idSchema, timestampSchema } from '../http/validation.js';
import { CURRENT_EPOCH } from './feed-epoch.js';

export interface RevocationStatusOptions {
  db: Database;
  /** Regions the relay publishes to; a region with no live node still shows up. */
  regions: readonly string[];
  /** A node that has not reported for this long is not counted as live. */
  nodeLivenessMs: number;
}

interface NodeRow {
  id: string;
  region: string;
  applied_seq: number;
  current_epoch: boolean;
  last_seen_at: Date;
  started_at: Date;
}

interface AckRow {
  node_id: string;
  applied_at: Date;
  closed_connections: number;
}

/**
 * `GET /v1/teams/{team}/keys/{id}/revocation`: for the key's latest revocation (or
 * rotation), which regions and live nodes have applied it and after how many
 * milliseconds, and `complete` once every live node has. A node counts as having applied
 * it only with a seq of the current epoch: a seq from an earlier history of the outbox (a
 * restored database) may be higher and still not include this revocation.
 */
const count = { type: 'integer', minimum: 0 } as const;

/** The propagation part of a status answer, shared with the team lockdown's. */
export const propagationProperties = {
  complete: { type: 'boolean', description: 'every live node has applied it' },
  liveNodes: count,
  pendingNodes: count,
  slowestMs: { type: ['integer', 'null'], description: 'from the commit to the slowest acknowledgement so far' },
  regions: {
    type: 'array',
    items: {
      type: 'object',
      required: ['region', 'published', 'nodes', 'applied', 'total'],
      properties: {
        region: { type: 'string' },
        published: { type: 'boolean', description: "the relay has published it to the region's Redis" },
        applied: count,
        total: count,
        nodes: {
          type: 'array',
          items: {
            type: 'object',
            required: ['nodeId', 'applied', 'afterMs', 'closedConnections', 'startedAfter', 'lastSeenAt'],
            properties: {
              nodeId: { type: 'string' },
              applied: { type: 'boolean' },
              afterMs: { type: ['integer', 'null'] },
              closedConnections: count,
              startedAfter: { type: 'boolean', description: 'the node started after the event, so it never held the keys' },
              lastSeenAt: timestampSchema,
            },
          },
        },
      },
    },
  },
} as const;

const statusSchema = {
  type: 'object',
  required: ['keyId', 'seq', 'kind', 'at', 'complete', 'liveNodes', 'pendingNodes', 'slowestMs', 'regions'],
  properties: {
    keyId: { type: 'string' },
    seq: { ...count, description: 'the revocation feed event carrying it' },
    kind: { type: 'string', enum: ['revoked', 'rotated'] },
    at: timestampSchema,
    ...propagationProperties,
  },
} as const;

export interface Propagation {
  complete: boolean;
  liveNodes: number;
  pendingNodes: number;
  slowestMs: number | null;
  regions: { region: string; published: boolean; nodes: unknown[]; applied: number; total: number }[];
}

/**
 * How far one outbox event has reached: per region, whether the relay published it, and
 * per live node, whether it applied it (its applied seq of the current epoch is at least the
 * event's), after how long and closing how many connections (its acknowledgement).
 */
export async function propagationOf(
  db: Queryable,
  event: { seq: number; created_at: Date },
  { regions, nodeLivenessMs }: Omit<RevocationStatusOptions, 'db'>,
): Promise<Propagation> {
  const [nodes, acks, cursors] = await Promise.all([
    db.query<NodeRow>(
      `SELECT id, region, applied_seq, coalesce(feed_epoch = ${CURRENT_EPOCH}, false) AS current_epoch, last_seen_at, started_at FROM nodes
       WHERE last_seen_at > clock_timestamp() - make_interval(secs => $1 / 1000.0) ORDER BY region, id`,
      [nodeLivenessMs],
    ),
    db.query<AckRow>(`SELECT node_id, applied_at, closed_connections FROM revocation_acks WHERE seq = $1 AND epoch = ${CURRENT_EPOCH}`, [event.seq]),
    db.query<{ region: string; seq: number }>('SELECT region, seq FROM relay_cursors'),
  ]);
  const ackByNode = new Map(acks.rows.map((ack) => [ack.node_id, ack]));
  const publishedTo = new Map(cursors.rows.map((cursor) => [cursor.region, cursor.seq >= event.seq]));
  const byRegion = new Map<string, { region: string; published: boolean; nodes: unknown[]; applied: number; total: number }>();
  for (const region of regions) byRegion.set(region, { region, published: publishedTo.get(region) ?? false, nodes: [], applied: 0, total: 0 });
  let slowestMs: number | null = null;
  let pending = 0;
  for (const node of nodes.rows) {
    let region = byRegion.get(node.region);
    if (region === undefined) byRegion.set(node.region, (region = { region: node.region, published: publishedTo.get(node.region) ?? false, nodes: [], applied: 0, total: 0 }));
    const ack = ackByNode.get(node.id);
    const applied = node.current_epoch && node.applied_seq >= event.seq;
    const afterMs = ack === undefined ? null : Math.max(0, ack.applied_at.getTime() - event.created_at.getTime());
    if (afterMs !== null) slowestMs = Math.max(slowestMs ?? 0, afterMs);
    region.total++;
    if (applied) region.applied++;
    else pending++;
    region.nodes.push({
      nodeId: node.id,
      applied,
      afterMs,
      closedConnections: ack?.closed_connections ?? 0,
      // A node that started after the revocation never held the key.
      startedAfter: ack === undefined && node.started_at.getTime() > event.created_at.getTime(),
      lastSeenAt: node.last_seen_at.toISOString(),
    });
  }
  return { complete: nodes.rows.length > 0 && pending === 0, liveNodes: nodes.rows.length, pendingNodes: pending, slowestMs, regions: [...byRegion.values()] };
}

export function registerRevocationStatus(app: FastifyInstance, { db, regions, nodeLivenessMs }: RevocationStatusOptions): void {
  app.get<{ Params: { team: string; id: string } }>(
    '/v1/teams/:team/keys/:id/revocation',
    {
      config: { scope: 'keys:read', errors: ['revocation_not_found'] },
      schema: {
        tags: ['keys'],
        summary: "Watch a key's latest revocation or rotation reach every node",
        params: { type: 'object', additionalProperties: false, required: ['team', 'id'], properties: { team: idSchema, id: idSchema } },
        response: { 200: statusSchema },
      },
    },
    async (request) => {
      const { team, id } = request.params;
      const { rows: events } = await db.query<{ seq: number; kind: string; created_at: Date }>(
        `SELECT seq, kind, created_at FROM outbox
         WHERE key_id = $1 AND team_id = $2 AND kind IN ('key.revoked', 'key.rotated') ORDER BY seq DESC LIMIT 1`,
        [id, team],
      );
      const event = events[0];
      if (event === undefined) throw fail('revocation_not_found');
      const propagation = await propagationOf(db, event, { regions, nodeLivenessMs });
      return {
        keyId: id,
        seq: event.seq,
        kind: event.kind === 'key.revoked' ? 'revoked' : 'rotated',
        at: event.created_at.toISOString(),
        ...propagation,
      };
    },
  );
}
