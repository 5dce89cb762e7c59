import type { FastifyInstance } from 'fastify';
import { auditContextOf } from '../activity/log.js';
import type { Database } from '../db/database.js';
import { fail } from '../errors.js';
import { principalOf, type Principal } from '../http/auth.js';
import type { CursorCodec } from '../http/cursor.js';
import { pageQuery, pageSchema, toPage } from '../http/pagination.js';
import { displayNameSchema, idSchema, nullableTimestampSchema, parseExpiry, teamParams } from '../http/validation.js';
import { firstMissingScope, scopeSchema, type Scope } from './scopes.js';
import { createdTokenSchema, tokenViewSchema } from './schemas.js';
import { createToken, getToken, listTokens, renderToken, revokeToken, rotateToken } from './store.js';

export interface TokenRoutesOptions {
  db: Database;
  cursors: CursorCodec;
}

const tokenParams = { type: 'object', additionalProperties: false, required: ['team', 'id'], properties: { team: idSchema, id: idSchema } } as const;

interface CreateTokenBody {
  name: string;
  scopes?: Scope[];
  expiresAt?: string | null;
}

/** A token never outlives the token that creates it: by default it expires with it. */
function expiryFor(creator: Principal, requested: string | null | undefined): Date | null {
  const expiresAt = parseExpiry(requested) ?? null;
  if (creator.expiresAt === null) return expiresAt;
  if (expiresAt === null) return creator.expiresAt;
  if (expiresAt.getTime() > creator.expiresAt.getTime()) throw fail('token_outlives_creator', creator.expiresAt.toISOString());
  return expiresAt;
}

export function registerTokenRoutes(app: FastifyInstance, { db, cursors }: TokenRoutesOptions): void {
  app.post<{ Params: { team: string }; Body: CreateTokenBody }>(
    '/v1/teams/:team/tokens',
    {
      config: { scope: 'tokens:write', errors: ['expires_at_in_past', 'token_outlives_creator'] },
      schema: {
        tags: ['tokens'],
        summary: 'Create a team token',
        description:
          'The new token may have only scopes the calling token has (default: all of them), and expires no later than the calling token. Answers 403 `scope_missing` naming the first scope it lacks.',
        params: teamParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: displayNameSchema,
            scopes: { type: 'array', uniqueItems: true, minItems: 1, items: scopeSchema },
            expiresAt: nullableTimestampSchema,
          },
        },
        response: { 201: createdTokenSchema },
      },
    },
    async (request, reply) => {
      const { team } = request.params;
      const creator = principalOf(request);
      const scopes = request.body.scopes ?? [...creator.scopes];
      const missing = firstMissingScope(creator.scopes, scopes);
      if (missing !== undefined) throw fail('scope_missing', missing);
      const expiresAt = expiryFor(creator, request.body.expiresAt);
      const created = await db.transaction((tx) => createToken(tx, auditContextOf(request), { teamId: team, name: request.body.name, scopes, expiresAt }));
      return reply.status(201).send({ ...created.view, token: created.secret });
    },
  );

  app.get<{ Params: { team: string }; Querystring: { limit: number; cursor?: string } }>(
    '/v1/teams/:team/tokens',
    {
      config: { scope: 'tokens:write', heavy: true },
      schema: {
        tags: ['tokens'],
        summary: "List a team's tokens",
        description: 'Newest first, active, expired and revoked alike; never their secrets.',
        params: teamParams,
        querystring: pageQuery,
        response: { 200: pageSchema(tokenViewSchema, 'A page of tokens.') },
      },
    },
    async (request) => {
      const { team } = request.params;
      const { limit, cursor } = request.query;
      const scope = `tokens:${team}`;
      const rows = await listTokens(db, team, limit, cursor === undefined ? undefined : cursors.decode(scope, cursor, 2));
      const now = Date.now();
      return toPage(rows, limit, cursors, scope, (row) => [row.position, row.id], (row) => renderToken(row, now));
    },
  );

  app.get<{ Params: { team: string; id: string } }>(
    '/v1/teams/:team/tokens/:id',
    {
      config: { scope: 'tokens:write', errors: ['token_not_found'] },
      schema: { tags: ['tokens'], summary: 'Read a team token', params: tokenParams, response: { 200: tokenViewSchema } },
    },
    async (request) => getToken(db, request.params.team, request.params.id),
  );

  app.post<{ Params: { team: string; id: string } }>(
    '/v1/teams/:team/tokens/:id/revoke',
    {
      config: { scope: 'tokens:write', errors: ['token_not_found'] },
      schema: {
        tags: ['tokens'],
        summary: 'Revoke a team token',
        description: 'The token is refused from its next call on, by every control plane. Revoking a revoked token changes nothing.',
        params: tokenParams,
        response: { 200: tokenViewSchema },
      },
    },
    async (request) => db.transaction((tx) => revokeToken(tx, auditContextOf(request), request.params.team, request.params.id)),
  );

  app.post(
    '/v1/me/rotate',
    {
      config: { errors: ['admin_token_configured'] },
      schema: {
        tags: ['tokens'],
        summary: 'Rotate the calling token',
        description:
          'Replaces the secret of the token making the call (the platform admin token, or a team token) and returns the new one; the old secret stops working at once. The admin token set by ADMIN_TOKEN comes from the environment and answers 409 `admin_token_configured`: change the setting instead.',
        response: { 200: createdTokenSchema },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { tokenId } = principal;
      if (tokenId === null) throw fail('admin_token_configured');
      const teamId = principal.kind === 'team' ? principal.teamId : null;
      const rotated = await db.transaction((tx) => rotateToken(tx, auditContextOf(request), tokenId, teamId));
      return { ...rotated.view, token: rotated.secret };
    },
  );
}
