import type { FastifyInstance } from 'fastify';
import { sha256 } from '../../lib/hash.js';
import { generateId, generateToken } from '../../lib/secret-format.js';
import { fail } from '../errors.js';
import { auditContextOf, recordActivity } from '../activity/log.js';
import { principalOf, requireAdmin } from '../http/auth.js';
import type { CursorCodec } from '../http/cursor.js';
import type { Database } from '../db/database.js';
import { appendOutbox } from '../revocation/outbox.js';
import { pageQuerySchema, toPage } from '../http/pagination.js';
import { reconcileQuota } from '../usage/store.js';
import { assertTeamAccess } from '../http/team-access.js';
import { displayNameSchema, idSchema } from '../http/validation.js';

export interface TeamRoutesOptions {
  db: Database;
  cursors: CursorCodec;
}

interface TeamRow {
  id: string;
  name: string;
  monthly_quota_bytes: number | null;
  created_at: Date;
  position: string;
}

const renderTeam = (row: TeamRow) => ({ id: row.id, name: row.name, monthlyQuotaBytes: row.monthly_quota_bytes, createdAt: row.created_at.toISOString() });
const TEAM_COLUMNS = 'id, name, monthly_quota_bytes, created_at, created_at::text AS position';
const nameBody = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: displayNameSchema } } as const;
const teamParams = { type: 'object', additionalProperties: false, required: ['team'], properties: { team: idSchema } } as const;

export function registerTeamRoutes(app: FastifyInstance, { db, cursors }: TeamRoutesOptions): void {
  // Who the token belongs to: the dashboard's first call after sign-in.
  app.get('/v1/me', async (request) => {
    const principal = principalOf(request);
    if (principal.kind === 'admin') return { kind: 'admin', team: null };
    const { rows } = await db.query<TeamRow>(`SELECT ${TEAM_COLUMNS} FROM teams WHERE id = $1`, [principal.teamId]);
    return { kind: 'team', team: rows[0] === undefined ? null : renderTeam(rows[0]) };
  });

  app.post<{ Body: { name: string } }>('/v1/teams', { schema: { body: nameBody } }, async (request, reply) => {
    requireAdmin(request);
    const { name } = request.body;
    const team = await db.transaction(async (tx) => {
      const { rows } = await tx.query<TeamRow>(
        `INSERT INTO teams (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING ${TEAM_COLUMNS}`,
        [generateId('team'), name],
      );
      const row = rows[0];
      if (row === undefined) throw fail('team_name_taken', name);
      await recordActivity(tx, auditContextOf(request), { teamId: row.id, action: 'team.created', targetType: 'team', targetId: row.id, details: { name } });
      return row;
    });
    return reply.status(201).send(renderTeam(team));
  });

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/teams',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: pageQuerySchema } } },
    async (request) => {
      requireAdmin(request);
      const { limit, cursor } = request.query;
      const after = cursor === undefined ? undefined : cursors.decode('teams', cursor, 2);
      const params: unknown[] = [limit + 1];
      let keyset = '';
      if (after !== undefined) {
        params.push(after[0], after[1]);
        keyset = 'WHERE (created_at, id) < ($2::timestamptz, $3)';
      }
      const { rows } = await db.query<TeamRow>(`SELECT ${TEAM_COLUMNS} FROM teams ${keyset} ORDER BY created_at DESC, id DESC LIMIT $1`, params);
      return toPage(rows, limit, cursors, 'teams', (row) => [row.position, row.id], renderTeam);
    },
  );

  app.get<{ Params: { team: string } }>('/v1/teams/:team', { schema: { params: teamParams } }, async (request) => {
    const { team } = request.params;
    await assertTeamAccess(db, request, team);
    const { rows } = await db.query<TeamRow>(`SELECT ${TEAM_COLUMNS} FROM teams WHERE id = $1`, [team]);
    if (rows[0] === undefined) throw fail('team_not_found');
    return renderTeam(rows[0]);
  });

  app.patch<{ Params: { team: string }; Body: { monthlyQuotaBytes: number | null } }>(
    '/v1/teams/:team',
    {
      schema: {
        params: teamParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['monthlyQuotaBytes'],
          properties: { monthlyQuotaBytes: { type: ['integer', 'null'], minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
        },
      },
    },
    async (request) => {
      requireAdmin(request);
      const { team } = request.params;
      const quota = request.body.monthlyQuotaBytes;
      return renderTeam(
        await db.transaction(async (tx) => {
          const { rows } = await tx.query<TeamRow>(`UPDATE teams SET monthly_quota_bytes = $2 WHERE id = $1 RETURNING ${TEAM_COLUMNS}`, [team, quota]);
          if (rows[0] === undefined) throw fail('team_not_found');
          await reconcileQuota(tx, 'team', team, quota);
          await recordActivity(tx, auditContextOf(request), { teamId: team, action: 'team.updated', targetType: 'team', targetId: team, details: { monthlyQuotaBytes: quota } });
          // Nodes drop what they cached about the team's quota.
          await appendOutbox(tx, { kind: 'team.updated', teamId: team, keyId: null, keyHash: null });
          return rows[0];
        }),
      );
    },
  );

  app.post<{ Params: { team: string }; Body: { name: string } }>(
    '/v1/teams/:team/tokens',
    { schema: { params: teamParams, body: nameBody } },
    async (request, reply) => {
      const { team } = request.params;
      await assertTeamAccess(db, request, team);
      const token = generateToken();
      const id = generateId('tok');
      const created = await db.transaction(async (tx) => {
        const { rows } = await tx.query<{ created_at: Date }>(
          'INSERT INTO tokens (id, team_id, name, token_hash) VALUES ($1, $2, $3, $4) RETURNING created_at',
          [id, team, request.body.name, sha256(token)],
        );
        await recordActivity(tx, auditContextOf(request), {
          teamId: team,
          action: 'token.created',
          targetType: 'token',
          targetId: id,
          details: { name: request.body.name },
        });
        return rows[0]!;
      });
      return reply.status(201).send({ id, teamId: team, name: request.body.name, token, createdAt: created.created_at.toISOString() });
    },
  );
}
