-- The outbox's identity (its feed epoch), epoch-aware proofs of propagation, and the
-- indexes retention deletes by.

-- Where this database lives: the cluster, the database within it and the WAL timeline. A
-- copy (CREATE DATABASE … TEMPLATE, a dump restored into a new database), a promoted
-- replica or a point-in-time recovery each answer something new here, while the settings
-- table they carry still names the old epoch: the control plane then draws a new one.
CREATE FUNCTION portcullis_database_identity() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT (SELECT system_identifier FROM pg_control_system())::text
    || '/' || (SELECT oid FROM pg_database WHERE datname = current_database())::text
    || '/' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)
$$;

INSERT INTO settings (name, value) VALUES
  ('feed_epoch', replace(gen_random_uuid()::text, '-', '')),
  ('feed_epoch_origin', portcullis_database_identity());

-- A node's applied seq means something only in the epoch it was applied in.
ALTER TABLE nodes ADD COLUMN feed_epoch text;

-- Acks recorded before epochs existed prove nothing any more: they keep the empty epoch.
ALTER TABLE revocation_acks ADD COLUMN epoch text NOT NULL DEFAULT '';
ALTER TABLE revocation_acks DROP CONSTRAINT revocation_acks_pkey, ADD PRIMARY KEY (seq, node_id, epoch);

CREATE INDEX revocation_acks_applied ON revocation_acks (applied_at);
CREATE INDEX usage_batches_received ON usage_batches (received_at);
