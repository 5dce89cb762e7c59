-- Concurrency caps and byte quotas on keys and teams; usage metering and quota state.

ALTER TABLE api_keys
  ADD COLUMN max_concurrent_per_node integer,
  ADD COLUMN max_concurrent_per_region integer,
  ADD COLUMN monthly_quota_bytes bigint;

ALTER TABLE teams ADD COLUMN monthly_quota_bytes bigint;

-- Quota events concern a key or a whole team: a team event has no key.
ALTER TABLE outbox ALTER COLUMN key_id DROP NOT NULL, ALTER COLUMN key_hash DROP NOT NULL;

-- Traffic per key and hour, as reported by proxy nodes.
CREATE TABLE usage_hourly (
  key_id text NOT NULL,
  team_id text NOT NULL,
  hour timestamptz NOT NULL,
  bytes_in bigint NOT NULL DEFAULT 0,
  bytes_out bigint NOT NULL DEFAULT 0,
  requests bigint NOT NULL DEFAULT 0,
  tunnels bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, hour)
);
CREATE INDEX usage_hourly_team_hour ON usage_hourly (team_id, hour);

-- Running monthly byte totals per key and per team, so a quota check is one row.
CREATE TABLE usage_monthly (
  subject_type text NOT NULL CHECK (subject_type IN ('key', 'team')),
  subject_id text NOT NULL,
  month date NOT NULL,
  bytes bigint NOT NULL DEFAULT 0,
  exceeded_at timestamptz,
  PRIMARY KEY (subject_type, subject_id, month)
);

-- A node's usage batch is counted once, however often it is retried.
CREATE TABLE usage_batches (
  node_id text NOT NULL,
  batch bigint NOT NULL,
  received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (node_id, batch)
);
