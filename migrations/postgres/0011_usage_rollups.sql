-- Usage summed per minute, hour and UTC day: analytics answer from these rows, never by scanning
-- the raw log. One row per bucket, tenant, key, endpoint, plugin, outcome and status code, with
-- the requests, their total latency and a mergeable sketch of their latencies (DDSketch, JSON),
-- from which percentiles over any range and filter are merged. Parts a record did not have
-- (no key, no endpoint) are '' so that the primary key holds.
CREATE TABLE usage_rollups
(
    period         TEXT   NOT NULL,
    bucket_ms      BIGINT NOT NULL,
    tenant         TEXT   NOT NULL,
    key_id         TEXT   NOT NULL,
    endpoint_id    TEXT   NOT NULL,
    plugin         TEXT   NOT NULL,
    outcome        TEXT   NOT NULL,
    status         BIGINT NOT NULL,
    requests       BIGINT NOT NULL,
    latency_sum_us BIGINT NOT NULL,
    latency_sketch TEXT   NOT NULL,
    PRIMARY KEY (period, bucket_ms, tenant, key_id, endpoint_id, plugin, outcome, status)
);
CREATE INDEX usage_rollups_tenant ON usage_rollups (tenant, period, bucket_ms);

-- How far into usage_batches the rollups have read: every batch up to this id is in them.
CREATE TABLE usage_rollup_checkpoint
(
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    batch_id BIGINT NOT NULL
);
INSERT INTO usage_rollup_checkpoint (id, batch_id) VALUES (1, 0);
