-- A tenant's webhook templates, built by the `webhooks` projection from WebhookTemplate events.
-- Same DDL on SQLite and PostgreSQL.
CREATE TABLE webhook_templates
(
    template_id   TEXT PRIMARY KEY,
    tenant        TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    kind          TEXT   NOT NULL, -- default, slack, teams, discord or custom
    body          TEXT,            -- the custom template's text, NULL for the other kinds
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    deleted_at_ms BIGINT,
    position      BIGINT NOT NULL  -- log position of the creation: stable list order and cursor
);
CREATE INDEX webhook_templates_tenant_position ON webhook_templates (tenant, position);
