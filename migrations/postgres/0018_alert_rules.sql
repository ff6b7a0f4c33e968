-- A tenant's usage alert rules, built by the `webhooks` projection from UsageAlert events: the
-- rule, whether it is in breach, and its last firing. Same DDL on SQLite and PostgreSQL.
CREATE TABLE alert_rules
(
    rule_id           TEXT PRIMARY KEY,
    tenant            TEXT   NOT NULL,
    name              TEXT   NOT NULL,
    rule              TEXT   NOT NULL, -- JSON: subject, metric, threshold, window_minutes
    state             TEXT   NOT NULL, -- clear or breached
    fired             BIGINT NOT NULL, -- how many times it fired
    last_fired_at_ms  BIGINT,
    last_value        DOUBLE PRECISION,
    created_at_ms     BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL,
    deleted_at_ms     BIGINT,
    position          BIGINT NOT NULL  -- log position of the creation: stable list order and cursor
);
CREATE INDEX alert_rules_tenant_position ON alert_rules (tenant, position);
