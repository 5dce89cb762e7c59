import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { sha256 } from '../../lib/hash.js';
import { isWellFormedToken } from '../../lib/secret-format.js';
import { fail } from '../errors.js';
import type { Queryable } from '../db/database.js';

/** Who is calling the admin API. A team principal can touch only its own team. */
export type Principal = { kind: 'admin'; tokenId: string | null } | { kind: 'team'; teamId: string; tokenId: string };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface AdminAuthOptions {
  db: Queryable;
  /** ADMIN_TOKEN from the environment, if set. */
  configuredAdminToken: string | undefined;
}

const BEARER = /^Bearer ([\x21-\x7e]{1,200})$/;

/** How long a verified token is trusted without asking the database again. */
const TOKEN_CACHE_TTL_MS = 10_000;

export function createAdminAuth({ db, configuredAdminToken }: AdminAuthOptions) {
  const configuredHash = configuredAdminToken === undefined ? undefined : sha256(configuredAdminToken);
  const known = new LRUCache<string, Principal>({ max: 10_000, ttl: TOKEN_CACHE_TTL_MS });

  return {
    async authenticate(request: FastifyRequest): Promise<Principal> {
      const header = request.headers.authorization;
      if (header === undefined) {
        throw fail('token_missing');
      }
      const token = BEARER.exec(header)?.[1];
      if (token === undefined) throw fail('token_invalid');
      const hash = sha256(token);
      if (configuredHash !== undefined && timingSafeEqual(hash, configuredHash)) return { kind: 'admin', tokenId: null };
      // The checksum refuses a mistyped or guessed token before any database work.
      if (!isWellFormedToken(token)) throw fail('token_invalid');
      const cacheKey = hash.toString('base64');
      const cached = known.get(cacheKey);
      if (cached !== undefined) return cached;
      const { rows } = await db.query<{ id: string; team_id: string | null }>('SELECT id, team_id FROM tokens WHERE token_hash = $1', [hash]);
      const row = rows[0];
      if (row === undefined) throw fail('token_invalid');
      const principal: Principal = row.team_id === null ? { kind: 'admin', tokenId: row.id } : { kind: 'team', teamId: row.team_id, tokenId: row.id };
      known.set(cacheKey, principal);
      return principal;
    },
  };
}

export type AdminAuth = ReturnType<typeof createAdminAuth>;

export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw fail('token_missing');
  return request.principal;
}

export function requireAdmin(request: FastifyRequest): void {
  if (principalOf(request).kind !== 'admin') throw fail('admin_required');
}

/**
 * A team token asking about another team gets the same 404 as a team that does not
 * exist, so it cannot even learn which team ids are real.
 */
export function requireTeamAccess(request: FastifyRequest, teamId: string): void {
  const principal = principalOf(request);
  if (principal.kind === 'team' && principal.teamId !== teamId) throw fail('team_not_found');
}
