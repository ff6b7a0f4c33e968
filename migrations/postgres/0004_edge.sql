-- The auth edge's state that is not an event.

-- HMAC-SHA256(pepper, key) per key secret and pepper: lets the edge verify a key in microseconds
-- instead of running PBKDF2. The pepper itself is never stored here (it comes from configuration
-- or the data directory); `pepper_id` names it, so nodes with different peppers never overwrite
-- each other's verifiers. Losing this table costs one PBKDF2 per key, nothing more.
CREATE TABLE key_verifiers
(
    lookup_id TEXT NOT NULL,
    pepper_id TEXT NOT NULL,
    verifier  TEXT NOT NULL,
    PRIMARY KEY (lookup_id, pepper_id)
);

-- Every edge decision, allowed or denied, appended in batches off the request path. Feeds
-- analytics and each key's last use.
CREATE TABLE usage_log
(
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms       BIGINT  NOT NULL,
    tenant      TEXT,
    key_id      TEXT,
    endpoint_id TEXT,
    plugin      TEXT,
    method      TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    status      BIGINT  NOT NULL,
    code        TEXT    NOT NULL,
    latency_us  BIGINT  NOT NULL,
    client_ip   TEXT
);
CREATE INDEX usage_log_at ON usage_log (at_ms);
CREATE INDEX usage_log_key ON usage_log (key_id, at_ms);

-- Each key's last use and request count, updated once per usage batch.
CREATE TABLE key_usage
(
    key_id          TEXT PRIMARY KEY,
    last_used_at_ms BIGINT NOT NULL,
    requests        BIGINT NOT NULL
);

-- When an endpoint was deprecated: the edge's `Deprecation` header (RFC 9745) carries it.
ALTER TABLE endpoints ADD COLUMN deprecated_at_ms BIGINT;
