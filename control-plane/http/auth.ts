import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { sha256 } from '../../lib/hash.js';
import { isWellFormedToken } from '../../lib/secret-format.js';
import { fail } from '../errors.js';
import type { Queryable } from '../db/database.js';
import { SCOPES, type Scope } from '../tokens/scopes.js';

/**
 * Who is calling the admin API and what they may do. A team principal can touch only its
 * own team, with its token's scopes; the platform admin has every scope. `tokenId` is null
 * for the token configured by ADMIN_TOKEN, which is not stored.
 */
export type Principal =
  | { kind: 'admin'; tokenId: string | null; scopes: readonly Scope[]; expiresAt: null }
  | { kind: 'team'; teamId: string; tokenId: string; scopes: readonly Scope[]; expiresAt: Date | null };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The scope a team token needs for this call; checked before the handler runs. */
    scope?: Scope;
    /** Only the platform admin token may make this call. */
    adminOnly?: boolean;
  }
}

export interface AdminAuthOptions {
  db: Queryable;
  /** ADMIN_TOKEN from the environment, if set. */
  configuredAdminToken: string | undefined;
}

interface TokenRow {
  id: string;
  team_id: string | null;
  scopes: Scope[];
  expires_at: Date | null;
  revoked_at: Date | null;
}

const BEARER = /^Bearer ([\x21-\x7e]{1,200})$/;

/** `last_used_at` is written at most this often per token, not on every call. */
const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * Every call looks its token up (one read on a unique index): a revoked, rotated or
 * expired token stops working on the next call, on every control plane sharing the
 * database, with no cache to outlive it.
 */
export function createAdminAuth({ db, configuredAdminToken }: AdminAuthOptions) {
  const configuredHash = configuredAdminToken === undefined ? undefined : sha256(configuredAdminToken);
  const recentlyUsed = new LRUCache<string, true>({ max: 10_000, ttl: LAST_USED_RESOLUTION_MS });

  async function noteUse(tokenId: string): Promise<void> {
    if (recentlyUsed.has(tokenId)) return;
    recentlyUsed.set(tokenId, true);
    await db.query('UPDATE tokens SET last_used_at = clock_timestamp() WHERE id = $1', [tokenId]);
  }

  return {
    async authenticate(request: FastifyRequest): Promise<Principal> {
      const header = request.headers.authorization;
      if (header === undefined) throw fail('token_missing');
      const token = BEARER.exec(header)?.[1];
      if (token === undefined) throw fail('token_invalid');
      const hash = sha256(token);
      if (configuredHash !== undefined && timingSafeEqual(hash, configuredHash)) return { kind: 'admin', tokenId: null, scopes: SCOPES, expiresAt: null };
      // The checksum refuses a mistyped or guessed token before any database work.
      if (!isWellFormedToken(token)) throw fail('token_invalid');
      const { rows } = await db.query<TokenRow>('SELECT id, team_id, scopes, expires_at, revoked_at FROM tokens WHERE token_hash = $1', [hash]);
      const row = rows[0];
      if (row === undefined) throw fail('token_invalid');
      if (row.revoked_at !== null) throw fail('token_revoked');
      if (row.expires_at !== null && row.expires_at.getTime() <= Date.now()) throw fail('token_expired');
      await noteUse(row.id);
      return row.team_id === null
        ? { kind: 'admin', tokenId: row.id, scopes: SCOPES, expiresAt: null }
        : { kind: 'team', teamId: row.team_id, tokenId: row.id, scopes: row.scopes, expiresAt: row.expires_at };
    },
  };
}

export type AdminAuth = ReturnType<typeof createAdminAuth>;

export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw fail('token_missing');
  return request.principal;
}

/** Enforces what the route declares in its config: admin only, or a scope. */
export function authorize(request: FastifyRequest): void {
  const principal = principalOf(request);
  const { adminOnly, scope } = request.routeOptions.config;
  if (adminOnly === true && principal.kind !== 'admin') throw fail('admin_required');
  if (scope !== undefined && !principal.scopes.includes(scope)) throw fail('scope_missing', scope);
}

/**
 * A team token asking about another team gets the same 404 as a team that does not
 * exist, so it cannot even learn which team ids are real.
 */
export function requireTeamAccess(request: FastifyRequest, teamId: string): void {
  const principal = principalOf(request);
  if (principal.kind === 'team' && principal.teamId !== teamId) throw fail('team_not_found');
}
