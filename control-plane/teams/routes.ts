import type { FastifyInstance } from 'fastify';
import { generateId } from '../../lib/secret-format.js';
import { fail } from '../errors.js';
import { auditContextOf, recordActivity } from '../activity/log.js';
import { principalOf } from '../http/auth.js';
import type { CursorCodec } from '../http/cursor.js';
import type { Database } from '../db/database.js';
import { appendOutbox } from '../revocation/outbox.js';
import { pageQuery, pageSchema, toPage } from '../http/pagination.js';
import { reconcileQuota } from '../usage/store.js';
import { displayNameSchema, teamParams, timestampSchema } from '../http/validation.js';
import { scopeSchema } from '../tokens/scopes.js';
import { getOwnToken } from '../tokens/store.js';
import { tokenViewSchema } from '../tokens/schemas.js';

export interface TeamRoutesOptions {
  db: Database;
  cursors: CursorCodec;
  /** Where clients reach the proxy, if this control plane knows (PUBLIC_PROXY_URL). */
  publicProxyUrl: () => string | undefined;
}

interface TeamRow {
  id: string;
  name: string;
  monthly_quota_bytes: number | null;
  debug_enabled: boolean;
  created_at: Date;
  position: string;
}

const renderTeam = (row: TeamRow) => ({
  id: row.id,
  name: row.name,
  monthlyQuotaBytes: row.monthly_quota_bytes,
  debugEnabled: row.debug_enabled,
  createdAt: row.created_at.toISOString(),
});
const TEAM_COLUMNS = 'id, name, monthly_quota_bytes, debug_enabled, created_at, created_at::text AS position';
const nameBody = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: displayNameSchema } } as const;

const teamViewSchema = {
  type: 'object',
  required: ['id', 'name', 'monthlyQuotaBytes', 'debugEnabled', 'createdAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    monthlyQuotaBytes: { type: ['integer', 'null'], description: 'bytes up and down per calendar month (UTC) for all its keys together' },
    debugEnabled: { type: 'boolean', description: 'its keys may send `Proxy-Debug: 1` and get the decision\'s timings and path in `Proxy-Debug-Info`' },
    createdAt: timestampSchema,
  },
} as const;

const meSchema = {
  description: 'Who the token belongs to and what it may do.',
  type: 'object',
  required: ['kind', 'team', 'scopes', 'token'],
  properties: {
    kind: { type: 'string', enum: ['admin', 'team'] },
    team: { anyOf: [teamViewSchema, { type: 'null' }] },
    scopes: { type: 'array', items: scopeSchema },
    token: { anyOf: [tokenViewSchema, { type: 'null' }], description: 'null for the admin token set by ADMIN_TOKEN, which is not stored' },
    proxyUrl: {
      type: ['string', 'null'],
      description: 'where clients reach this deployment\'s proxy (`http://host:port`, from PUBLIC_PROXY_URL); null when the control plane is not told',
    },
  },
} as const;

export function registerTeamRoutes(app: FastifyInstance, { db, cursors, publicProxyUrl }: TeamRoutesOptions): void {
  // The dashboard's first call after sign-in.
  app.get('/v1/me', { schema: { tags: ['teams'], summary: 'Who the calling token belongs to', response: { 200: meSchema } } }, async (request) => {
    const principal = principalOf(request);
    const token = principal.tokenId === null ? null : await getOwnToken(db, principal.tokenId);
    const proxyUrl = publicProxyUrl() ?? null;
    if (principal.kind === 'admin') return { kind: 'admin', team: null, scopes: principal.scopes, token, proxyUrl };
    const { rows } = await db.query<TeamRow>(`SELECT ${TEAM_COLUMNS} FROM teams WHERE id = $1`, [principal.teamId]);
    return { kind: 'team', team: rows[0] === undefined ? null : renderTeam(rows[0]), scopes: principal.scopes, token, proxyUrl };
  });

  app.post<{ Body: { name: string } }>(
    '/v1/teams',
    {
      config: { adminOnly: true, errors: ['team_name_taken'] },
      schema: { tags: ['teams'], summary: 'Create a team', body: nameBody, response: { 201: teamViewSchema } },
    },
    async (request, reply) => {
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
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/teams',
    {
      config: { adminOnly: true, heavy: true },
      schema: { tags: ['teams'], summary: 'List teams', description: 'Newest first.', querystring: pageQuery, response: { 200: pageSchema(teamViewSchema, 'A page of teams.') } },
    },
    async (request) => {
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

  app.get<{ Params: { team: string } }>(
    '/v1/teams/:team',
    { schema: { tags: ['teams'], summary: 'Read a team', params: teamParams, response: { 200: teamViewSchema } } },
    async (request) => {
      const { rows } = await db.query<TeamRow>(`SELECT ${TEAM_COLUMNS} FROM teams WHERE id = $1`, [request.params.team]);
      if (rows[0] === undefined) throw fail('team_not_found');
      return renderTeam(rows[0]);
    },
  );

  app.patch<{ Params: { team: string }; Body: { monthlyQuotaBytes?: number | null; debugEnabled?: boolean } }>(
    '/v1/teams/:team',
    {
      config: { adminOnly: true },
      schema: {
        tags: ['teams'],
        summary: "Set a team's monthly byte quota, or whether its keys may debug",
        description:
          'monthlyQuotaBytes: null removes it. Raised above this month\'s usage, the team works again; lowered below it, the team is over quota at once. ' +
          'debugEnabled: its keys may send `Proxy-Debug: 1` to a node (every node, within a second).',
        params: teamParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            monthlyQuotaBytes: { type: ['integer', 'null'], minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
            debugEnabled: { type: 'boolean' },
          },
        },
        response: { 200: teamViewSchema },
      },
    },
    async (request) => {
      const { team } = request.params;
      const { monthlyQuotaBytes: quota, debugEnabled } = request.body;
      return renderTeam(
        await db.transaction(async (tx) => {
          const { rows } = await tx.query<TeamRow>(
            `UPDATE teams SET monthly_quota_bytes = CASE WHEN $2 THEN $3::bigint ELSE monthly_quota_bytes END, debug_enabled = coalesce($4, debug_enabled)
             WHERE id = $1 RETURNING ${TEAM_COLUMNS}`,
            [team, quota !== undefined, quota ?? null, debugEnabled ?? null],
          );
          if (rows[0] === undefined) throw fail('team_not_found');
          if (quota !== undefined) await reconcileQuota(tx, 'team', team, quota);
          await recordActivity(tx, auditContextOf(request), { teamId: team, action: 'team.updated', targetType: 'team', targetId: team, details: request.body });
          // Nodes drop what they cached about the team (its quota, whether it may debug).
          await appendOutbox(tx, { kind: 'team.updated', teamId: team, keyId: null, keyHash: null });
          return rows[0];
        }),
      );
    },
  );
}
