import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { chainPages, CHAIN_PAGE, verifyChain } from './chain-store.js';
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

  app.get<{ Params: { team: string } }>(
    '/v1/teams/:team/activity/verify',
    {
      config: { scope: 'activity:read' },
      schema: {
        tags: ['activity'],
        summary: "Verify a team's activity chain",
        description: `Walks the team's hash chain from its first entry, ${CHAIN_PAGE.toLocaleString('en-US')} entries per query, recomputing every hash, and reports the first broken link. Entries written before the chain existed are not part of it.`,
        params: teamParams,
        response: { 200: verdictSchema },
      },
    },
    async (request) => verifyChain(db, request.params.team),
  );

  app.get<{ Params: { team: string } }>(
    '/v1/teams/:team/activity/export',
    {
      config: { scope: 'activity:read' },
      schema: {
        tags: ['activity'],
        summary: "Export a team's activity chain as JSON lines",
        description:
          'One JSON object per line, in chain order: `seq`, `prevHash`, `id`, `teamId`, `actorType`, `actorId`, `action`, `targetType`, `targetId`, `requestId`, `ip`, `details`, `createdAt` and `hash`, the SHA-256 (hex) of the canonical JSON of every other field (keys sorted at every depth). Streamed a page at a time.',
        params: teamParams,
        response: { 200: { description: 'JSON lines', content: { 'application/x-ndjson': { schema: { type: 'string' } } } } },
      },
    },
    async (request, reply) => {
      const pages = chainPages(db, request.params.team);
      // The first page is read before answering, so a failure there is an ordinary error.
      const first = await pages.next();
      async function* lines(): AsyncGenerator<string> {
        if (first.done === true) return;
        yield first.value.map((entry) => `${JSON.stringify(entry)}\n`).join('');
        for await (const page of pages) yield page.map((entry) => `${JSON.stringify(entry)}\n`).join('');
      }
      return reply
        .header('content-type', 'application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="activity-${request.params.team}.jsonl"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(lines(), { objectMode: false }));
    },
  );
}

const verdictSchema = {
  description: 'The verdict: intact, or the first broken link.',
  type: 'object',
  required: ['intact', 'entries', 'head', 'firstBroken'],
  properties: {
    intact: { type: 'boolean' },
    entries: { type: 'integer', description: 'chained entries checked' },
    head: {
      type: ['object', 'null'],
      required: ['seq', 'hash'],
      properties: { seq: { type: 'integer' }, hash: nullableString },
      description: 'the chain head recorded by writers; null before the first chained entry',
    },
    firstBroken: {
      type: ['object', 'null'],
      required: ['seq', 'id', 'problem', 'message'],
      properties: {
        seq: { type: ['integer', 'null'] },
        id: nullableString,
        problem: { type: 'string', enum: ['entry_altered', 'link_broken', 'entry_missing', 'head_mismatch', 'entry_unchained'] },
        message: { type: 'string' },
      },
    },
  },
} as const;
