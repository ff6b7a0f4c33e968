-- The usage log, stored a batch to a row. The edge records tens of thousands of decisions a
-- second; one database row per decision cost more server CPU than the checks themselves (the
-- README's Benchmarks). A batch is what one node's writer flushes every 100 ms: a JSON array of
-- records, each [at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, code,
-- latency_us, client_ip]. Batches are appended and never changed. Several nodes append
-- concurrently, so `id` order is not commit order: readers that tail it must allow for that.
CREATE TABLE usage_batches
(
    id            BIGSERIAL PRIMARY KEY,
    written_at_ms BIGINT NOT NULL,
    records       BIGINT NOT NULL,
    rows          TEXT   NOT NULL
);

INSERT INTO usage_batches (written_at_ms, records, rows)
SELECT MAX(at_ms),
       COUNT(*),
       json_agg(json_build_array(at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, code,
                                 latency_us, client_ip) ORDER BY id)::text
FROM usage_log
HAVING COUNT(*) > 0;

DROP TABLE usage_log;

-- One row per record, for SQL over the log (and the rollups to come), in log order.
CREATE VIEW usage_log AS
SELECT b.id                       AS batch_id,
       r.ordinality - 1           AS seq,
       (r.value ->> 0)::bigint    AS at_ms,
       r.value ->> 1              AS tenant,
       r.value ->> 2              AS key_id,
       r.value ->> 3              AS endpoint_id,
       r.value ->> 4              AS plugin,
       r.value ->> 5              AS method,
       r.value ->> 6              AS path,
       (r.value ->> 7)::bigint    AS status,
       r.value ->> 8              AS code,
       (r.value ->> 9)::bigint    AS latency_us,
       r.value ->> 10             AS client_ip
FROM usage_batches b,
     jsonb_array_elements(b.rows::jsonb) WITH ORDINALITY AS r(value, ordinality);
