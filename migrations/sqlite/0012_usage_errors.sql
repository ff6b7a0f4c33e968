-- The most recent errors (4xx and 5xx) the edge answered, per tenant, for analytics: copied from
-- the usage log by the rollups, in the same transaction, and capped at the newest 1 000 a
-- tenant ('' for requests without one), so that a flood of refusals costs a bounded table.
CREATE TABLE usage_errors
(
    batch_id    BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    tenant      TEXT   NOT NULL,
    key_id      TEXT,
    endpoint_id TEXT,
    plugin      TEXT,
    method      TEXT   NOT NULL,
    path        TEXT   NOT NULL,
    status      BIGINT NOT NULL,
    outcome     TEXT   NOT NULL,
    latency_us  BIGINT NOT NULL,
    client_ip   TEXT,
    PRIMARY KEY (batch_id, seq)
);
CREATE INDEX usage_errors_tenant ON usage_errors (tenant, batch_id, seq);
