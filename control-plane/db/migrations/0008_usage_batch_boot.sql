-- A usage batch is known by node, process boot and number: a node restarted under the same
-- NODE_ID numbers its batches from 1 again, and those are new usage, not retries. Batches
-- from nodes that send no boot id keep '' and are known by node and number, as before.
ALTER TABLE usage_batches ADD COLUMN boot text NOT NULL DEFAULT '';
ALTER TABLE usage_batches DROP CONSTRAINT usage_batches_pkey;
ALTER TABLE usage_batches ADD PRIMARY KEY (node_id, boot, batch);
