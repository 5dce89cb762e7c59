/**
 * What a team token may do. The platform admin token has every scope and also the calls
 * that are admin-only; a team token has the scopes it was created with, and can create
 * tokens with a subset of them only.
 */
export const SCOPES = ['keys:read', 'keys:write', 'usage:read', 'activity:read', 'tokens:write'] as const;

export type Scope = (typeof SCOPES)[number];

export const SCOPE_DESCRIPTIONS: Readonly<Record<Scope, string>> = {
  'keys:read': 'list and read keys, their revocation status, and export them as CSV',
  'keys:write': 'create (one or in bulk), change, revoke and rotate keys',
  'usage:read': 'read usage series and export usage as CSV',
  'activity:read': "read the team's activity log",
  'tokens:write': "list, create and revoke the team's tokens",
};

export const scopeSchema = { type: 'string', enum: SCOPES } as const;

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** The first of `wanted` that `held` lacks, if any. */
export function firstMissingScope(held: readonly Scope[], wanted: readonly Scope[]): Scope | undefined {
  return wanted.find((scope) => !held.includes(scope));
}
