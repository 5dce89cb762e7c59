import type { FastifyInstance } from 'fastify';
import { TEAM_LOCKED, TEAM_UNLOCKED } from '../../contract/feed.js';
import { auditContextOf, recordActivity } from '../activity/log.js';
import type { Database } from '../db/database.js';
import { fail } from '../errors.js';
import { nullableTimestampSchema, teamParams, timestampSchema } from '../http/validation.js';
import { appendOutbox } from '../revocation/outbox.js';
import { propagationOf, propagationProperties } from '../revocation/status.js';

export interface LockdownRoutesOptions {
  db: Database;
  /** Regions the relay publishes to, for the propagation status. */
  regions: readonly string[];
  nodeLivenessMs: number;
}

interface LockdownRow {
  lockdown_not_before: Date | null;
  locked_at: Date | null;
}

const lockdownSchema = {
  description: "The team's lockdown, and how far its latest change (locking or lifting) has reached.",
  type: 'object',
  required: ['teamId', 'locked', 'notBefore', 'lockedAt', 'change'],
  properties: {
    teamId: { type: 'string' },
    locked: { type: 'boolean' },
    notBefore: { ...nullableTimestampSchema, description: 'keys of the team created before this instant are refused' },
    lockedAt: nullableTimestampSchema,
    change: {
      type: ['object', 'null'],
      description: 'the latest lockdown or lift, per region and node: applied or not, after how many ms, connections closed; null if the team was never locked',
      required: ['seq', 'kind', 'at', 'complete', 'liveNodes', 'pendingNodes', 'slowestMs', 'regions'],
      properties: {
        seq: { type: 'integer', minimum: 0, description: 'the feed event carrying it' },
        kind: { type: 'string', enum: ['locked', 'lifted'] },
        at: timestampSchema,
        ...propagationProperties,
      },
    },
  },
} as const;

/**
 * A team's kill switch. Locking refuses every key of the team created before `notBefore`
 * on every node, closing their connections, with one outbox event however many keys the
 * team has (no key row changes); lifting it is another event. Both are logged.
 */
export function registerLockdownRoutes(app: FastifyInstance, { db, regions, nodeLivenessMs }: LockdownRoutesOptions): void {
  async function status(teamId: string) {
    const [{ rows: teams }, { rows: events }] = await Promise.all([
      db.query<LockdownRow>('SELECT lockdown_not_before, locked_at FROM teams WHERE id = $1', [teamId]),
      db.query<{ seq: number; kind: string; created_at: Date }>(
        `SELECT seq, kind, created_at FROM outbox WHERE team_id = $1 AND key_id IS NULL AND kind IN ($2, $3) ORDER BY seq DESC LIMIT 1`,
        [teamId, TEAM_LOCKED, TEAM_UNLOCKED],
      ),
    ]);
    const team = teams[0];
    if (team === undefined) throw fail('team_not_found');
    const event = events[0];
    return {
      teamId,
      locked: team.lockdown_not_before !== null,
      notBefore: team.lockdown_not_before?.toISOString() ?? null,
      lockedAt: team.locked_at?.toISOString() ?? null,
      change:
        event === undefined
          ? null
          : {
              seq: event.seq,
              kind: event.kind === TEAM_LOCKED ? 'locked' : 'lifted',
              at: event.created_at.toISOString(),
              ...(await propagationOf(db, event, { regions, nodeLivenessMs })),
            },
    };
  }

  app.get<{ Params: { team: string } }>(
    '/v1/teams/:team/lockdown',
    {
      config: { scope: 'keys:read' },
      schema: { tags: ['teams'], summary: "A team's lockdown and how far it has reached", params: teamParams, response: { 200: lockdownSchema } },
    },
    async (request) => status(request.params.team),
  );

  app.post<{ Params: { team: string }; Body: { notBefore?: string } | undefined }>(
    '/v1/teams/:team/lockdown',
    {
      config: { scope: 'keys:write', errors: ['not_before_in_future'] },
      schema: {
        tags: ['teams'],
        summary: "Lock a team down: refuse every key created before an instant",
        description:
          'Every key of the team created before `notBefore` (default: now) is refused with 403 `team_locked` by every node within the revocation bound, and its connections are closed; keys created later work. Key rows are not changed. Locking again moves `notBefore`.',
        params: teamParams,
        body: { type: 'object', additionalProperties: false, properties: { notBefore: timestampSchema } },
        response: { 200: lockdownSchema },
      },
    },
    async (request) => {
      const { team } = request.params;
      const given = request.body?.notBefore;
      await db.transaction(async (tx) => {
        const { rows } = await tx.query<{ not_before: Date }>(
          `UPDATE teams SET lockdown_not_before = coalesce($2::timestamptz, clock_timestamp()), locked_at = clock_timestamp()
           WHERE id = $1 RETURNING lockdown_not_before AS not_before`,
          [team, given ?? null],
        );
        const notBefore = rows[0]?.not_before;
        if (notBefore === undefined) throw fail('team_not_found');
        // A little slack for the caller's clock: "now" from a client is a moment ago here.
        if (given !== undefined && notBefore.getTime() > Date.now() + 1_000) throw fail('not_before_in_future');
        await recordActivity(tx, auditContextOf(request), {
          teamId: team,
          action: 'team.locked_down',
          targetType: 'team',
          targetId: team,
          details: { notBefore: notBefore.toISOString(), lockdown: `/v1/teams/${team}/lockdown` },
        });
        await appendOutbox(tx, { kind: TEAM_LOCKED, teamId: team, keyId: null, keyHash: null, notBefore });
      });
      return status(team);
    },
  );

  app.delete<{ Params: { team: string } }>(
    '/v1/teams/:team/lockdown',
    {
      config: { scope: 'keys:write' },
      schema: {
        tags: ['teams'],
        summary: "Lift a team's lockdown",
        description: 'Its keys work again on every node within the revocation bound. Lifting a team that is not locked changes nothing and logs nothing.',
        params: teamParams,
        response: { 200: lockdownSchema },
      },
    },
    async (request) => {
      const { team } = request.params;
      await db.transaction(async (tx) => {
        const { rows } = await tx.query<{ locked: boolean }>(
          `SELECT lockdown_not_before IS NOT NULL AS locked FROM teams WHERE id = $1 FOR UPDATE`,
          [team],
        );
        if (rows[0] === undefined) throw fail('team_not_found');
        if (!rows[0].locked) return;
        await tx.query('UPDATE teams SET lockdown_not_before = NULL, locked_at = NULL WHERE id = $1', [team]);
        await recordActivity(tx, auditContextOf(request), { teamId: team, action: 'team.lockdown_lifted', targetType: 'team', targetId: team, details: { lockdown: `/v1/teams/${team}/lockdown` } });
        await appendOutbox(tx, { kind: TEAM_UNLOCKED, teamId: team, keyId: null, keyHash: null });
      });
      return status(team);
    },
  );
}
