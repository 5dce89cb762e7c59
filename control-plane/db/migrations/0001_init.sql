-- Teams, admin tokens, pools, API keys, the activity log and the revocation outbox.

CREATE TABLE settings (
  name text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE teams (
  id text PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX teams_name_unique ON teams (lower(name));
CREATE INDEX teams_created ON teams (created_at DESC, id DESC);

-- A token with no team is a platform admin token.
CREATE TABLE tokens (
  id text PRIMARY KEY,
  team_id text REFERENCES teams (id),
  name text NOT NULL,
  token_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX tokens_hash_unique ON tokens (token_hash);

CREATE TABLE pools (
  name text PRIMARY KEY,
  exits jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE api_keys (
  id text PRIMARY KEY,
  team_id text NOT NULL REFERENCES teams (id),
  name text NOT NULL,
  prefix text NOT NULL,
  key_hash bytea NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  pools text[] NOT NULL DEFAULT '{}',
  countries text[] NOT NULL DEFAULT '{}',
  expires_at timestamptz,
  rate_limit_per_second integer,
  rate_limit_burst integer,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE UNIQUE INDEX api_keys_hash_unique ON api_keys (key_hash);
-- Key names are unique among a team's active keys; a revoked key's name can be reused.
CREATE UNIQUE INDEX api_keys_active_name_unique ON api_keys (team_id, lower(name)) WHERE status = 'active';
-- One index per list variant, each matching its ORDER BY (newest first).
CREATE INDEX api_keys_team_created ON api_keys (team_id, created_at DESC, id DESC);
CREATE INDEX api_keys_team_status_created ON api_keys (team_id, status, created_at DESC, id DESC);
CREATE INDEX api_keys_team_expiring_created ON api_keys (team_id, created_at DESC, id DESC) WHERE expires_at IS NOT NULL;
-- Prefix search by name (case-insensitive) and by the key's public prefix.
CREATE INDEX api_keys_team_name_search ON api_keys (team_id, (lower(name) COLLATE "C"));
CREATE INDEX api_keys_team_prefix_search ON api_keys (team_id, (prefix COLLATE "C"));

CREATE TABLE activity (
  id text PRIMARY KEY,
  team_id text REFERENCES teams (id),
  actor_type text NOT NULL,
  actor_id text,
  action text NOT NULL,
  target_type text NOT NULL,
  target_id text NOT NULL,
  request_id text,
  ip text,
  details jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX activity_team_created ON activity (team_id, created_at DESC, id DESC);
CREATE INDEX activity_created ON activity (created_at DESC, id DESC);

-- Revocation events in commit order: writers take an advisory lock before drawing a
-- sequence number, so a reader of `seq > cursor` can never skip a row committed late.
CREATE TABLE outbox (
  seq bigint PRIMARY KEY,
  kind text NOT NULL,
  team_id text NOT NULL,
  key_id text NOT NULL,
  key_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE SEQUENCE outbox_seq AS bigint;
CREATE INDEX outbox_key ON outbox (key_id, seq DESC);
