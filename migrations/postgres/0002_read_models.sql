-- Read models, built by projection workers from the global log (projections/). The same DDL runs on
-- SQLite and PostgreSQL; times are epoch milliseconds so that one query text serves both.

-- One row per projection: how far into the global log its read model is. Updated in the same
-- transaction as the read-model rows, so a crash never applies an event twice or skips one.
CREATE TABLE projection_checkpoints
(
    name          TEXT PRIMARY KEY,
    position      BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE admin_tokens
(
    token_id      TEXT PRIMARY KEY,
    tenant        TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    permissions   TEXT   NOT NULL, -- JSON array
    scopes        TEXT   NOT NULL, -- JSON: "All" or {"Only": [...]}
    fingerprint   TEXT   NOT NULL,
    secret_hash   TEXT   NOT NULL, -- PBKDF2 PHC string with per-token salt
    expires_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    deleted_at_ms BIGINT,
    position      BIGINT NOT NULL  -- log position of the issue event: stable list order and cursor
);
-- Every admin request finds its token by fingerprint.
CREATE INDEX admin_tokens_fingerprint ON admin_tokens (fingerprint);
CREATE INDEX admin_tokens_tenant_position ON admin_tokens (tenant, position);

-- Written by the API on use, not by a projection: usage is not an event, and a rebuild of
-- admin_tokens must not forget when tokens were last used.
CREATE TABLE admin_token_usage
(
    token_id        TEXT PRIMARY KEY,
    last_used_at_ms BIGINT NOT NULL
);

-- The key list (admin views).
CREATE TABLE api_keys
(
    key_id        TEXT PRIMARY KEY,
    tenant        TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    environment   TEXT   NOT NULL,
    prefix        TEXT   NOT NULL, -- ak_live_<lookup id>: lets a person recognise the key
    scopes        TEXT   NOT NULL, -- JSON array
    rate_limits   TEXT   NOT NULL, -- JSON object
    ip_allow      TEXT   NOT NULL, -- JSON array of CIDR blocks
    ip_block      TEXT   NOT NULL, -- JSON array of CIDR blocks
    expires_at_ms BIGINT,
    status        TEXT   NOT NULL, -- active | revoked | expired as recorded by events
    expiry_stage  TEXT   NOT NULL, -- none | seven_days | one_day: what the expiry scheduler still owes
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT,
    position      BIGINT NOT NULL  -- log position of the issue event: stable list order and cursor
);
CREATE INDEX api_keys_tenant_position ON api_keys (tenant, position);
-- The expiry scheduler's scan.
CREATE INDEX api_keys_status_expiry ON api_keys (status, expires_at_ms);

-- The hot lookup the auth edge loads: one row per presented lookup id (a rotated key has two
-- until the old secret's grace deadline).
CREATE TABLE key_lookup
(
    lookup_id      TEXT PRIMARY KEY,
    key_id         TEXT   NOT NULL,
    tenant         TEXT   NOT NULL,
    environment    TEXT   NOT NULL,
    secret_hash    TEXT   NOT NULL,
    valid_until_ms BIGINT,          -- set on the retired secret of a rotated key
    status         TEXT   NOT NULL,
    scopes         TEXT   NOT NULL,
    rate_limits    TEXT   NOT NULL,
    ip_allow       TEXT   NOT NULL,
    ip_block       TEXT   NOT NULL,
    expires_at_ms  BIGINT,
    position       BIGINT NOT NULL  -- last log position that changed this row
);
CREATE INDEX key_lookup_key_id ON key_lookup (key_id);

-- Every event, for auditors: who did what to which aggregate, when.
CREATE TABLE audit_log
(
    position       BIGINT PRIMARY KEY,
    tenant         TEXT   NOT NULL,
    actor          TEXT   NOT NULL,
    action         TEXT   NOT NULL,
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    occurred_at_ms BIGINT NOT NULL,
    request_id     TEXT,
    details        TEXT   NOT NULL  -- the event payload as JSON, secret hashes removed
);
CREATE INDEX audit_log_tenant_position ON audit_log (tenant, position);
CREATE INDEX audit_log_actor ON audit_log (actor, position);
CREATE INDEX audit_log_action ON audit_log (action, position);
