-- Rollups at four grains: beside the detailed rows (per key, endpoint and plugin), the same
-- requests summed per tenant, per endpoint and per key, so that a report reads the fewest rows
-- that hold its figures (a 90-day report over a tenant: a few rows a day, not one per key ×
-- endpoint × outcome × status). The grain leads the key, then the tenant, so that a tenant's
-- range is one stretch of the index.
ALTER TABLE usage_rollups ADD COLUMN grain TEXT NOT NULL DEFAULT 'detail';
ALTER TABLE usage_rollups ALTER COLUMN grain DROP DEFAULT;
ALTER TABLE usage_rollups DROP CONSTRAINT usage_rollups_pkey;
ALTER TABLE usage_rollups
    ADD PRIMARY KEY (grain, period, tenant, bucket_ms, key_id, endpoint_id, plugin, outcome, status);
DROP INDEX usage_rollups_tenant;
-- The retention sweep's oldest minute; partial, so that no report over hours or days is
-- planned through it.
CREATE INDEX usage_rollups_minutes ON usage_rollups (bucket_ms) WHERE period = 'minute';

-- The coarser grains of rows folded before them are summed from the detailed rows by the next
-- step of the rollups, in its transaction (0: not yet).
ALTER TABLE usage_rollup_checkpoint ADD COLUMN grains_summed INTEGER NOT NULL DEFAULT 0;
