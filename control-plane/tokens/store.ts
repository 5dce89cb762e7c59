import { sha256 } from '../../lib/hash.js';
import { generateId, generateToken, TOKEN_PREFIX } from '../../lib/secret-format.js';
import { recordActivity, type AuditContext } from '../activity/log.js';
import type { Queryable } from '../db/database.js';
import { fail } from '../errors.js';
import type { Scope } from './scopes.js';

/**
 * Admin and team tokens: stored as SHA-256 hashes with a short public prefix; each change
 * in the caller's transaction with its activity entry. A token with no team is a platform
 * admin token.
 */

export interface TokenRow {
  id: string;
  team_id: string | null;
  name: string;
  prefix: string | null;
  scopes: Scope[];
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
  position: string;
}

export const TOKEN_COLUMNS = 'id, team_id, name, prefix, scopes, created_by, created_at, expires_at, last_used_at, revoked_at, created_at::text AS position';

/** Characters after `pc_tok_` shown as a token's public prefix, as for keys. */
const DISPLAY_CHARACTERS = 6;
const displayPrefix = (token: string) => token.slice(0, TOKEN_PREFIX.length + DISPLAY_CHARACTERS);

export function renderToken(row: TokenRow, now = Date.now()) {
  const status = row.revoked_at !== null ? 'revoked' : row.expires_at !== null && row.expires_at.getTime() <= now ? 'expired' : 'active';
  return {
    id: row.id,
    teamId: row.team_id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    status,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    expiresAt: row.expires_at?.toISOString() ?? null,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}

export type TokenView = ReturnType<typeof renderToken>;

export interface NewToken {
  teamId: string | null;
  name: string;
  scopes: readonly Scope[];
  expiresAt: Date | null;
}

export async function createToken(tx: Queryable, audit: AuditContext, token: NewToken): Promise<{ view: TokenView; secret: string }> {
  const secret = generateToken();
  const { rows } = await tx.query<TokenRow>(
    `INSERT INTO tokens (id, team_id, name, token_hash, prefix, scopes, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${TOKEN_COLUMNS}`,
    [generateId('tok'), token.teamId, token.name, sha256(secret), displayPrefix(secret), token.scopes, audit.actorId, token.expiresAt],
  );
  const row = rows[0]!;
  await recordActivity(tx, audit, {
    teamId: token.teamId,
    action: 'token.created',
    targetType: 'token',
    targetId: row.id,
    details: { name: token.name, prefix: row.prefix, scopes: token.scopes, expiresAt: row.expires_at?.toISOString() ?? null },
  });
  return { view: renderToken(row), secret };
}

export async function getToken(db: Queryable, teamId: string, tokenId: string): Promise<TokenView> {
  const { rows } = await db.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = $1 AND team_id = $2`, [tokenId, teamId]);
  if (rows[0] === undefined) throw fail('token_not_found');
  return renderToken(rows[0]);
}

/** A team's tokens, newest first, from `after` (the position of the last one seen). */
export async function listTokens(db: Queryable, teamId: string, limit: number, after: string[] | undefined): Promise<TokenRow[]> {
  const params: unknown[] = [teamId, limit + 1];
  let keyset = '';
  if (after !== undefined) {
    params.push(after[0], after[1]);
    keyset = 'AND (created_at, id) < ($3::timestamptz, $4)';
  }
  const { rows } = await db.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE team_id = $1 ${keyset} ORDER BY created_at DESC, id DESC LIMIT $2`, params);
  return rows;
}

async function lockToken(tx: Queryable, tokenId: string, teamId: string | null): Promise<TokenRow> {
  const { rows } = await tx.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = $1 AND team_id IS NOT DISTINCT FROM $2 FOR UPDATE`, [tokenId, teamId]);
  if (rows[0] === undefined) throw fail('token_not_found');
  return rows[0];
}

/** Revokes a team token; revoking it again changes nothing and logs nothing. */
export async function revokeToken(tx: Queryable, audit: AuditContext, teamId: string, tokenId: string): Promise<TokenView> {
  const before = await lockToken(tx, tokenId, teamId);
  if (before.revoked_at !== null) return renderToken(before);
  const { rows } = await tx.query<TokenRow>(`UPDATE tokens SET revoked_at = clock_timestamp() WHERE id = $1 RETURNING ${TOKEN_COLUMNS}`, [tokenId]);
  await recordActivity(tx, audit, { teamId, action: 'token.revoked', targetType: 'token', targetId: tokenId, details: { name: before.name, prefix: before.prefix } });
  return renderToken(rows[0]!);
}

/** Replaces a token's secret: the old one stops working on its next call. */
export async function rotateToken(tx: Queryable, audit: AuditContext, tokenId: string, teamId: string | null): Promise<{ view: TokenView; secret: string }> {
  const before = await lockToken(tx, tokenId, teamId);
  const secret = generateToken();
  const { rows } = await tx.query<TokenRow>(`UPDATE tokens SET token_hash = $2, prefix = $3 WHERE id = $1 RETURNING ${TOKEN_COLUMNS}`, [
    tokenId,
    sha256(secret),
    displayPrefix(secret),
  ]);
  const row = rows[0]!;
  await recordActivity(tx, audit, {
    teamId,
    action: 'token.rotated',
    targetType: 'token',
    targetId: tokenId,
    details: { name: row.name, previousPrefix: before.prefix, prefix: row.prefix },
  });
  return { view: renderToken(row), secret };
}

/** The calling token's own row, for `/v1/me`. */
export async function getOwnToken(db: Queryable, tokenId: string): Promise<TokenView | null> {
  const { rows } = await db.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = $1`, [tokenId]);
  return rows[0] === undefined ? null : renderToken(rows[0]);
}
