-- Which rollups worker committed the checkpoint last (a random mark a worker draws when it starts; 0
-- after a clear): a worker that finds its own mark at the batch it left holds the stored cells it
-- wrote and need not read them back.
ALTER TABLE usage_rollup_checkpoint ADD COLUMN folded_by BIGINT NOT NULL DEFAULT 0;
