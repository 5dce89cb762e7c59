-- Team token lifecycle: scopes, a public prefix, expiry, revocation, last use, and who
-- created each token; listed newest first per team.

ALTER TABLE tokens
  ADD COLUMN prefix text,
  ADD COLUMN scopes text[] NOT NULL DEFAULT '{}',
  ADD COLUMN created_by text,
  ADD COLUMN expires_at timestamptz,
  ADD COLUMN last_used_at timestamptz,
  ADD COLUMN revoked_at timestamptz;

-- Tokens made before scopes existed could do everything a team token can, and still can.
-- (A platform admin token has every scope whatever its row says.)
UPDATE tokens SET scopes = ARRAY['keys:read', 'keys:write', 'usage:read', 'activity:read', 'tokens:write'];

CREATE INDEX tokens_team_created ON tokens (team_id, created_at DESC, id DESC);
