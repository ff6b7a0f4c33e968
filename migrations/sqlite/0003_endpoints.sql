-- The endpoint catalogue (explorer, tenant OpenAPI, SDKs, the edge's route table), built by the
-- `endpoints` projection from Endpoint events. Same DDL on SQLite and PostgreSQL.
CREATE TABLE endpoints
(
    endpoint_id     TEXT PRIMARY KEY,
    route_id        TEXT   NOT NULL, -- the event stream (route shape) that owns the endpoint
    path            TEXT   NOT NULL, -- template, e.g. /files/{id}
    methods         TEXT   NOT NULL, -- JSON array, e.g. ["GET","HEAD"]
    plugin          TEXT   NOT NULL,
    description     TEXT   NOT NULL,
    required_scopes TEXT   NOT NULL, -- JSON array
    request_schema  TEXT,            -- JSON Schema or NULL
    response_schema TEXT,            -- JSON Schema or NULL
    upstream_url    TEXT   NOT NULL,
    deprecated      BIGINT NOT NULL, -- 0 or 1
    sunset_at_ms    BIGINT,
    active          BIGINT NOT NULL, -- global activation (superusers), 0 or 1
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    position        BIGINT NOT NULL  -- last log position that changed the row
);
-- The explorer pages in path order.
CREATE INDEX endpoints_path ON endpoints (path, endpoint_id);
CREATE INDEX endpoints_route ON endpoints (route_id);

-- Tenants that disabled an endpoint for themselves (absent row: enabled).
CREATE TABLE endpoint_tenant_settings
(
    endpoint_id TEXT   NOT NULL,
    tenant      TEXT   NOT NULL,
    enabled     BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, tenant)
);
