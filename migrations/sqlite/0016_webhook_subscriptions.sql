-- A tenant's webhook subscriptions, built by the `webhooks` projection from WebhookSubscription
-- events. Signing secrets are not here: they stay sealed in the events. Same DDL on SQLite and
-- PostgreSQL.
CREATE TABLE webhook_subscriptions
(
    webhook_id    TEXT PRIMARY KEY,
    tenant        TEXT   NOT NULL,
    url           TEXT   NOT NULL,
    event_types   TEXT   NOT NULL, -- JSON array of names, ["*"] for every type
    template_id   TEXT,
    headers       TEXT   NOT NULL, -- JSON object
    description   TEXT   NOT NULL,
    status        TEXT   NOT NULL, -- active, paused or disabled
    disabled      TEXT,            -- JSON: why, when disabled
    secret_rotated_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    deleted_at_ms BIGINT,
    position      BIGINT NOT NULL  -- log position of the creation: stable list order and cursor
);
CREATE INDEX webhook_subscriptions_tenant_position ON webhook_subscriptions (tenant, position);
