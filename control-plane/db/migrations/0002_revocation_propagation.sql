-- Relay progress per region, proxy nodes' reports, and which node applied which revocation.

CREATE TABLE relay_cursors (
  region text PRIMARY KEY,
  seq bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE nodes (
  id text PRIMARY KEY,
  region text NOT NULL,
  applied_seq bigint NOT NULL,
  feed_silence_ms integer,
  open_tunnels integer NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL
);
CREATE INDEX nodes_last_seen ON nodes (last_seen_at DESC);

CREATE TABLE revocation_acks (
  seq bigint NOT NULL,
  node_id text NOT NULL,
  region text NOT NULL,
  applied_at timestamptz NOT NULL,
  closed_connections integer NOT NULL,
  PRIMARY KEY (seq, node_id)
);
