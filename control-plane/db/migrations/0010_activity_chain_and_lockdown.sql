-- A tamper-evident activity log: each entry carries the SHA-256 of the one before it in its
-- team's chain (the platform's entries, with no team, form a chain of their own). Entries
-- written before this migration stay unchained: the chain starts at the first new entry,
-- because the hash is computed by the application over a canonical encoding that SQL
-- alone cannot reproduce.

ALTER TABLE activity ADD COLUMN chain_seq bigint;
ALTER TABLE activity ADD COLUMN prev_hash text;
ALTER TABLE activity ADD COLUMN hash text;

CREATE UNIQUE INDEX activity_team_chain ON activity (team_id, chain_seq) WHERE chain_seq IS NOT NULL AND team_id IS NOT NULL;
CREATE UNIQUE INDEX activity_platform_chain ON activity (chain_seq) WHERE chain_seq IS NOT NULL AND team_id IS NULL;

-- The head of each chain. Writers lock its row for the rest of their transaction, so
-- entries of one team are appended one at a time and the chain never forks.
-- `chain` is the team id, or '' for the platform's chain.
CREATE TABLE activity_chains (
  chain text PRIMARY KEY,
  seq bigint NOT NULL,
  hash text
);

-- A team's kill switch: while `lockdown_not_before` is set, every key of the team created
-- before it is refused, without touching the key rows. `locked_at` is when it was set.
ALTER TABLE teams ADD COLUMN lockdown_not_before timestamptz;
ALTER TABLE teams ADD COLUMN locked_at timestamptz;
-- The instant a `team.locked` event carries to nodes.
ALTER TABLE outbox ADD COLUMN not_before timestamptz;
