-- Webhook deliveries: the dispatcher's durable queue and its log. One row per (event, subscription)
-- the dispatcher matched, written in the transaction that moves its checkpoint on; one row per
-- attempt. Not a read model: a rebuild leaves them alone (deliveries are facts about receivers).
CREATE TABLE webhook_deliveries
(
    seq              INTEGER PRIMARY KEY, -- list order and cursor
    delivery_id      TEXT    NOT NULL UNIQUE, -- msg_…: the webhook-id of every attempt
    webhook_id       TEXT    NOT NULL,
    tenant           TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    event_position   BIGINT  NOT NULL,
    message          TEXT    NOT NULL, -- JSON: type, timestamp, tenant, data
    status           TEXT    NOT NULL, -- pending, delivered or failed
    attempts         INTEGER NOT NULL,
    next_attempt_ms  BIGINT,           -- when pending: due from then
    claimed_until_ms BIGINT,           -- a node is sending it until then
    last_status_code INTEGER,
    last_error       TEXT,
    created_at_ms    BIGINT  NOT NULL,
    updated_at_ms    BIGINT  NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_held ON webhook_deliveries (webhook_id) WHERE status = 'held';
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant, seq);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, seq);

CREATE TABLE webhook_attempts
(
    delivery_id     TEXT    NOT NULL,
    attempt         INTEGER NOT NULL,
    webhook_id      TEXT    NOT NULL,
    tenant          TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    delivered       INTEGER NOT NULL, -- 1 for a 2xx
    status_code     INTEGER,          -- none when no answer came (timeout, refused, blocked)
    error           TEXT,
    request_body    TEXT    NOT NULL,
    response_body   TEXT,             -- the first 4 KiB
    duration_ms     BIGINT  NOT NULL,
    at_ms           BIGINT  NOT NULL,
    next_attempt_ms BIGINT,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, at_ms);
CREATE INDEX webhook_attempts_tenant ON webhook_attempts (tenant, at_ms);

-- Since when every attempt of a subscription has failed (none while the last one succeeded).
CREATE TABLE webhook_health
(
    webhook_id       TEXT PRIMARY KEY,
    failing_since_ms BIGINT NOT NULL
);

-- How far the dispatcher has matched the log. Subscriptions are younger than this migration's
-- log, so it starts at the head.
CREATE TABLE webhook_dispatch_checkpoint
(
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO webhook_dispatch_checkpoint (name, position)
SELECT 'dispatcher', COALESCE(MAX(global_position), 0) FROM events;
