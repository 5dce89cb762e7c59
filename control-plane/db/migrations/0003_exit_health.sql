-- Each node's view of its exits' health, reported with its applied seq.
ALTER TABLE nodes ADD COLUMN exit_health jsonb NOT NULL DEFAULT '[]';
