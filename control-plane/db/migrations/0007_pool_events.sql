-- Pool changes go through the outbox too, so nodes hear of them within a second. They
-- belong to no team: only they may leave team_id empty, and they never name a key.
ALTER TABLE outbox ALTER COLUMN team_id DROP NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_subject CHECK (
  CASE WHEN kind = 'pools.changed' THEN team_id IS NULL AND key_id IS NULL AND key_hash IS NULL ELSE team_id IS NOT NULL END
);
