-- The usage log without each record's ids spelled out. A record named its tenant, key id,
-- endpoint id and plugin in full: about 90 of its 150 bytes, written to the WAL and again at
-- checkpoint, for the same few keys and endpoints over and over. They are now a row of
-- `usage_subjects`, numbered once, and a record holds that number.
--
-- A record is now [at_ms - base_ms, subject, method, path, status, code, latency_us, client_ip];
-- `subject` is NULL when the decision was about neither a key nor an endpoint. A subject's
-- missing parts are '' (not NULL, so that the unique constraint holds); the view gives NULL.
CREATE TABLE usage_subjects
(
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant      TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    plugin      TEXT NOT NULL,
    UNIQUE (tenant, key_id, endpoint_id, plugin)
);

-- The smallest record time of the row: records hold their distance from it.
ALTER TABLE usage_batches ADD COLUMN base_ms BIGINT NOT NULL DEFAULT 0;

DROP VIEW usage_log;

-- Batches written before this migration, rewritten in the new form (base 0).
INSERT OR IGNORE INTO usage_subjects (tenant, key_id, endpoint_id, plugin)
SELECT DISTINCT COALESCE(r.value ->> 1, ''),
                COALESCE(r.value ->> 2, ''),
                COALESCE(r.value ->> 3, ''),
                COALESCE(r.value ->> 4, '')
FROM usage_batches b,
     json_each(b.rows) r
WHERE r.value ->> 2 IS NOT NULL
   OR r.value ->> 3 IS NOT NULL;

UPDATE usage_batches
SET rows = (SELECT json_group_array(json_array(r.value ->> 0, s.id, r.value ->> 5, r.value ->> 6, r.value ->> 7,
                                               r.value ->> 8, r.value ->> 9, r.value ->> 10) ORDER BY r.key)
            FROM json_each(usage_batches.rows) r
                     LEFT JOIN usage_subjects s
                               ON s.tenant = COALESCE(r.value ->> 1, '')
                                   AND s.key_id = COALESCE(r.value ->> 2, '')
                                   AND s.endpoint_id = COALESCE(r.value ->> 3, '')
                                   AND s.plugin = COALESCE(r.value ->> 4, ''));

-- One row per record, for SQL over the log (and the rollups to come), in log order.
CREATE VIEW usage_log AS
SELECT b.id                         AS batch_id,
       CAST(r.key AS INTEGER)       AS seq,
       b.base_ms + (r.value ->> 0)  AS at_ms,
       NULLIF(s.tenant, '')         AS tenant,
       NULLIF(s.key_id, '')         AS key_id,
       NULLIF(s.endpoint_id, '')    AS endpoint_id,
       NULLIF(s.plugin, '')         AS plugin,
       r.value ->> 2                AS method,
       r.value ->> 3                AS path,
       r.value ->> 4                AS status,
       r.value ->> 5                AS code,
       r.value ->> 6                AS latency_us,
       r.value ->> 7                AS client_ip
FROM usage_batches b
         JOIN json_each(b.rows) r
         LEFT JOIN usage_subjects s ON s.id = r.value ->> 1;
