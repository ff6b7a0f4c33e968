-- The usage log, stored a batch to a row. The edge records tens of thousands of decisions a
-- second; one database row per decision cost more server CPU than the checks themselves (the
-- README's Benchmarks). A batch is what the writer flushes every 100 ms: a JSON array of records,
-- each [at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, code, latency_us,
-- client_ip]. Batches are appended in `id` order and never changed.
CREATE TABLE usage_batches
(
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    written_at_ms BIGINT NOT NULL,
    records       BIGINT NOT NULL,
    rows          TEXT   NOT NULL
);

INSERT INTO usage_batches (written_at_ms, records, rows)
SELECT MAX(at_ms),
       COUNT(*),
       json_group_array(json_array(at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, code,
                                   latency_us, client_ip))
FROM (SELECT * FROM usage_log ORDER BY id)
HAVING COUNT(*) > 0;

DROP TABLE usage_log;

-- One row per record, for SQL over the log (and the rollups to come), in log order.
CREATE VIEW usage_log AS
SELECT b.id                         AS batch_id,
       CAST(r.key AS INTEGER)       AS seq,
       r.value ->> 0                AS at_ms,
       r.value ->> 1                AS tenant,
       r.value ->> 2                AS key_id,
       r.value ->> 3                AS endpoint_id,
       r.value ->> 4                AS plugin,
       r.value ->> 5                AS method,
       r.value ->> 6                AS path,
       r.value ->> 7                AS status,
       r.value ->> 8                AS code,
       r.value ->> 9                AS latency_us,
       r.value ->> 10               AS client_ip
FROM usage_batches b,
     json_each(b.rows) r;
