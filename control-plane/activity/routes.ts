import type { FastifyInstance } from 'fastify';
import type { CursorCodec } from '../http/cursor.js';
import type { Database } from '../db/database.js';
import { pageQuery, pageSchema, toPage } from '../http/pagination.js';
import { teamParams, timestampSchema } from '../http/validation.js';

export interface ActivityRoutesOptions {
  db: Database;
  cursors: CursorCodec;
}

interface ActivityRow {
  id: string;
  team_id: string | null;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string;
  request_id: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  created_at: Date;
  position: string;
}

const COLUMNS = `id, team_id, actor_type, actor_id, action, target_type, target_id, request_id, ip, details,
  created_at, created_at::text AS position`;

function renderActivity(row: ActivityRow) {
  return {
    id: row.id,
    teamId: row.team_id,
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    target: { type: row.target_type, id: row.target_id },
    requestId: row.request_id,
    ip: row.ip,
    details: row.details,
    createdAt: row.created_at.toISOString(),
  };
}

const nullableString = { type: ['string', 'null'] } as const;
const subject = { type: 'object', required: ['type', 'id'], properties: { type: { type: 'string' }, id: { type: 'string' } } } as const;

const activitySchema = {
  type: 'object',
  required: ['id', 'teamId', 'actor', 'action', 'target', 'requestId', 'ip', 'details', 'createdAt'],
  properties: {
    id: { type: 'string' },
    teamId: nullableString,
    actor: {
      type: 'object',
      required: ['type', 'id'],
      properties: {
        type: { type: 'string', enum: ['admin', 'team_token', 'system'] },
        id: { ...nullableString, description: 'the token that made the change; null for the system or the admin token set by ADMIN_TOKEN' },
      },
    },
    action: { type: 'string', description: 'such as `key.created`, `key.revoked`, `token.created`, `token.revoked`, `token.rotated`' },
    target: subject,
    requestId: nullableString,
    ip: nullableString,
    details: { type: 'object', additionalProperties: true },
    createdAt: timestampSchema,
  },
} as const;

const activityPage = pageSchema(activitySchema, 'A page of the activity log, newest first.');

export function registerActivityRoutes(app: FastifyInstance, { db, cursors }: ActivityRoutesOptions): void {
  async function page(scope: string, teamId: string | null, limit: number, cursor: string | undefined) {
    const after = cursor === undefined ? undefined : cursors.decode(scope, cursor, 2);
    const params: unknown[] = [limit + 1];
    const where: string[] = [];
    if (teamId !== null) {
      params.push(teamId);
      where.push(`team_id = $${params.length}`);
    }
    if (after !== undefined) {
      params.push(after[0], after[1]);
      where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length})`);
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const { rows } = await db.query<ActivityRow>(`SELECT ${COLUMNS} FROM activity ${clause} ORDER BY created_at DESC, id DESC LIMIT $1`, params);
    return toPage(rows, limit, cursors, scope, (row) => [row.position, row.id], renderActivity);
  }

  app.get<{ Params: { team: string }; Querystring: { limit: number; cursor?: string } }>(
    '/v1/teams/:team/activity',
    {
      config: { scope: 'activity:read', heavy: true },
      schema: { tags: ['activity'], summary: "A team's activity log", params: teamParams, querystring: pageQuery, response: { 200: activityPage } },
    },
    async (request) => {
      const { team } = request.params;
      return page(`activity:${team}`, team, request.query.limit, request.query.cursor);
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/activity',
    {
      config: { adminOnly: true, heavy: true },
      schema: { tags: ['activity'], summary: 'The whole activity log', description: 'Every team, pools and platform tokens.', querystring: pageQuery, response: { 200: activityPage } },
    },
    async (request) => page('activity', null, request.query.limit, request.query.cursor),
  );
}
