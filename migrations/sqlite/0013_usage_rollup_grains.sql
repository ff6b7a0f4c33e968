-- Rollups at four grains: beside the detailed rows (per key, endpoint and plugin), the same
-- requests summed per tenant, per endpoint and per key, so that a report reads the fewest rows
-- that hold its figures (a 90-day report over a tenant: a few rows a day, not one per key ×
-- endpoint × outcome × status). The grain leads the key, then the tenant, so that a tenant's
-- range is one stretch of the key; WITHOUT ROWID keeps each row in that key's b-tree.
CREATE TABLE usage_rollups_by_grain
(
    grain          TEXT   NOT NULL,
    period         TEXT   NOT NULL,
    tenant         TEXT   NOT NULL,
    bucket_ms      BIGINT NOT NULL,
    key_id         TEXT   NOT NULL,
    endpoint_id    TEXT   NOT NULL,
    plugin         TEXT   NOT NULL,
    outcome        TEXT   NOT NULL,
    status         BIGINT NOT NULL,
    requests       BIGINT NOT NULL,
    latency_sum_us BIGINT NOT NULL,
    latency_sketch TEXT   NOT NULL,
    PRIMARY KEY (grain, period, tenant, bucket_ms, key_id, endpoint_id, plugin, outcome, status)
) WITHOUT ROWID;
INSERT INTO usage_rollups_by_grain
SELECT 'detail', period, tenant, bucket_ms, key_id, endpoint_id, plugin, outcome, status, requests, latency_sum_us,
       latency_sketch
FROM usage_rollups;
DROP TABLE usage_rollups;
ALTER TABLE usage_rollups_by_grain RENAME TO usage_rollups;
-- The retention sweep's oldest minute; partial, so that no report over hours or days is
-- planned through it.
CREATE INDEX usage_rollups_minutes ON usage_rollups (bucket_ms) WHERE period = 'minute';

-- The coarser grains of rows folded before them are summed from the detailed rows by the next
-- step of the rollups, in its transaction (0: not yet).
ALTER TABLE usage_rollup_checkpoint ADD COLUMN grains_summed INTEGER NOT NULL DEFAULT 0;
