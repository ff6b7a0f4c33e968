//! Queries over the read models, shared by REST and GraphQL.

use crate::ProjectionError;
use chrono::{DateTime, TimeZone, Utc};
use keyledger_commands::{Database, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

pub const MAX_PAGE: i64 = 200;

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A SQL text with `$n` placeholders built alongside its arguments, because the Any driver's
/// query builder does not number placeholders for PostgreSQL.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Int(i64),
    Text(String),
}

impl Sql {
    fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }
    fn bind_int(&mut self, v: i64) -> &mut Self {
        self.args.push(Arg::Int(v));
        self.text.push_str(&format!("${}", self.args.len()));
        self
    }
    fn bind_text(&mut self, v: impl Into<String>) -> &mut Self {
        self.args.push(Arg::Text(v.into()));
        self.text.push_str(&format!("${}", self.args.len()));
        self
    }
    async fn fetch_all(&self, db: &Database) -> Result<Vec<AnyRow>, ProjectionError> {
        let mut q = sqlx::query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_str()),
            };
        }
        Ok(q.fetch_all(db.pool()).await?)
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn opt_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(time)
}

fn parse_json<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> Result<T, ProjectionError> {
    serde_json::from_str(raw).map_err(|e| ProjectionError::Store(StoreError::Corrupt(format!("{what}: {e}"))))
}

/// A cursor is the position of the last row returned; anything else is a client error.
pub fn parse_cursor(cursor: &str) -> Option<i64> {
    cursor.parse::<i64>().ok().filter(|c| *c > 0)
}

fn page<T>(mut rows: Vec<(i64, T)>, limit: i64) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|(p, _)| p.to_string())
    } else {
        None
    };
    Page {
        data: rows.into_iter().map(|(_, t)| t).collect(),
        next_cursor,
    }
}

// ---------------- keys ----------------

#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub environment: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub rate_limits: serde_json::Value,
    pub ip_allow: Vec<String>,
    pub ip_block: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Effective status: an active key past its expiry reads as expired even before the
    /// scheduler records it.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// From the edge's usage records (batched, so a second or so behind).
    pub last_used_at: Option<DateTime<Utc>>,
    pub requests: i64,
}

#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// `None`: every tenant (superusers only).
    pub tenant: Option<String>,
    pub status: Option<String>,
    pub include_revoked: bool,
    pub limit: i64,
    pub cursor: Option<i64>,
}

const KEY_COLUMNS: &str = "key_id, tenant, name, environment, prefix, scopes, rate_limits, ip_allow, ip_block, \
     expires_at_ms, created_at_ms, updated_at_ms, revoked_at_ms, position, \
     (SELECT u.last_used_at_ms FROM key_usage u WHERE u.key_id = api_keys.key_id) AS last_used_at_ms, \
     (SELECT u.requests FROM key_usage u WHERE u.key_id = api_keys.key_id) AS requests, ";

fn effective_status(sql: &mut Sql, now_ms: i64) {
    sql.push("CASE WHEN status = 'active' AND expires_at_ms IS NOT NULL AND expires_at_ms <= ")
        .bind_int(now_ms)
        .push(" THEN 'expired' ELSE status END");
}

fn key_row(r: &AnyRow) -> Result<(i64, KeyRow), ProjectionError> {
    Ok((
        r.try_get("position")?,
        KeyRow {
            id: r.try_get("key_id")?,
            tenant: r.try_get("tenant")?,
            name: r.try_get("name")?,
            environment: r.try_get("environment")?,
            prefix: r.try_get("prefix")?,
            scopes: parse_json(&r.try_get::<String, _>("scopes")?, "scopes")?,
            rate_limits: parse_json(&r.try_get::<String, _>("rate_limits")?, "rate_limits")?,
            ip_allow: parse_json(&r.try_get::<String, _>("ip_allow")?, "ip_allow")?,
            ip_block: parse_json(&r.try_get::<String, _>("ip_block")?, "ip_block")?,
            expires_at: opt_time(r.try_get("expires_at_ms")?),
            status: r.try_get("effective_status")?,
            created_at: time(r.try_get("created_at_ms")?),
            updated_at: time(r.try_get("updated_at_ms")?),
            revoked_at: opt_time(r.try_get("revoked_at_ms")?),
            last_used_at: opt_time(r.try_get("last_used_at_ms")?),
            requests: r.try_get::<Option<i64>, _>("requests")?.unwrap_or(0),
        },
    ))
}

/// Newest first. Revoked keys are hidden unless asked for (or filtered on explicitly).
pub async fn list_keys(db: &Database, f: &KeyFilter, now: DateTime<Utc>) -> Result<Page<KeyRow>, ProjectionError> {
    let now_ms = now.timestamp_millis();
    let mut sql = Sql::new("SELECT * FROM (SELECT ");
    sql.push(KEY_COLUMNS);
    effective_status(&mut sql, now_ms);
    sql.push(" AS effective_status FROM api_keys) k WHERE 1 = 1");
    if let Some(tenant) = &f.tenant {
        sql.push(" AND tenant = ").bind_text(tenant.as_str());
    }
    match &f.status {
        Some(status) => {
            sql.push(" AND effective_status = ").bind_text(status.as_str());
        }
        None if !f.include_revoked => {
            sql.push(" AND effective_status <> 'revoked'");
        }
        None => {}
    }
    if let Some(cursor) = f.cursor {
        sql.push(" AND position < ").bind_int(cursor);
    }
    sql.push(" ORDER BY position DESC LIMIT ").bind_int(f.limit + 1);
    let rows = sql.fetch_all(db).await?;
    let rows = rows.iter().map(key_row).collect::<Result<Vec<_>, _>>()?;
    Ok(page(rows, f.limit))
}

pub async fn get_key(db: &Database, key_id: &str, now: DateTime<Utc>) -> Result<Option<KeyRow>, ProjectionError> {
    let mut sql = Sql::new("SELECT ");
    sql.push(KEY_COLUMNS);
    effective_status(&mut sql, now.timestamp_millis());
    sql.push(" AS effective_status FROM api_keys WHERE key_id = ")
        .bind_text(key_id);
    let rows = sql.fetch_all(db).await?;
    rows.first().map(key_row).transpose().map(|r| r.map(|(_, k)| k))
}

/// A key's last use and request count from the edge's usage records.
pub async fn key_usage(db: &Database, key_id: &str) -> Result<(Option<DateTime<Utc>>, i64), ProjectionError> {
    let row = sqlx::query("SELECT last_used_at_ms, requests FROM key_usage WHERE key_id = $1")
        .bind(key_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => (opt_time(r.try_get("last_used_at_ms")?), r.try_get("requests")?),
        None => (None, 0),
    })
}

/// Keys that owe the scheduler a warning or an expiry by `now`.
pub async fn keys_due_for_expiry_check(
    db: &Database,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(String, String)>, ProjectionError> {
    let now_ms = now.timestamp_millis();
    let day = 86_400_000i64;
    let rows = sqlx::query(
        "SELECT key_id, tenant FROM api_keys WHERE status = 'active' AND expires_at_ms IS NOT NULL AND ( \
           expires_at_ms <= $1 \
           OR (expiry_stage = 'none' AND expires_at_ms <= $2) \
           OR (expiry_stage IN ('none', 'seven_days') AND expires_at_ms <= $3)) \
         ORDER BY expires_at_ms LIMIT $4",
    )
    .bind(now_ms)
    .bind(now_ms + 7 * day)
    .bind(now_ms + day)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>("key_id")?, r.try_get::<String, _>("tenant")?)))
        .collect()
}

// ---------------- admin tokens ----------------

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub permissions: Vec<String>,
    pub scopes: serde_json::Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub deleted: bool,
}

const TOKEN_SELECT: &str = "SELECT t.token_id, t.tenant, t.name, t.permissions, t.scopes, t.expires_at_ms, \
     t.created_at_ms, t.deleted_at_ms, t.position, u.last_used_at_ms FROM admin_tokens t \
     LEFT JOIN admin_token_usage u ON u.token_id = t.token_id";

fn token_row(r: &AnyRow) -> Result<(i64, TokenRow), ProjectionError> {
    Ok((
        r.try_get("position")?,
        TokenRow {
            id: r.try_get("token_id")?,
            tenant: r.try_get("tenant")?,
            name: r.try_get("name")?,
            permissions: parse_json(&r.try_get::<String, _>("permissions")?, "permissions")?,
            scopes: parse_json(&r.try_get::<String, _>("scopes")?, "scopes")?,
            expires_at: opt_time(r.try_get("expires_at_ms")?),
            created_at: time(r.try_get("created_at_ms")?),
            last_used_at: opt_time(r.try_get("last_used_at_ms")?),
            deleted: r.try_get::<Option<i64>, _>("deleted_at_ms")?.is_some(),
        },
    ))
}

/// Live (not deleted) tokens, newest first.
pub async fn list_tokens(
    db: &Database,
    tenant: Option<&str>,
    limit: i64,
    cursor: Option<i64>,
) -> Result<Page<TokenRow>, ProjectionError> {
    let mut sql = Sql::new(TOKEN_SELECT);
    sql.push(" WHERE t.deleted_at_ms IS NULL");
    if let Some(tenant) = tenant {
        sql.push(" AND t.tenant = ").bind_text(tenant);
    }
    if let Some(cursor) = cursor {
        sql.push(" AND t.position < ").bind_int(cursor);
    }
    sql.push(" ORDER BY t.position DESC LIMIT ").bind_int(limit + 1);
    let rows = sql.fetch_all(db).await?;
    let rows = rows.iter().map(token_row).collect::<Result<Vec<_>, _>>()?;
    Ok(page(rows, limit))
}

pub async fn get_token(db: &Database, token_id: &str) -> Result<Option<TokenRow>, ProjectionError> {
    let mut sql = Sql::new(TOKEN_SELECT);
    sql.push(" WHERE t.token_id = ").bind_text(token_id);
    let rows = sql.fetch_all(db).await?;
    rows.first().map(token_row).transpose().map(|r| r.map(|(_, t)| t))
}

// ---------------- audit ----------------

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub position: i64,
    pub tenant: String,
    pub actor: String,
    pub action: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<String>,
    pub actor: Option<String>,
    /// Any of these event types.
    pub actions: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
    pub cursor: Option<i64>,
}

/// Newest first.
pub async fn list_audit(db: &Database, f: &AuditFilter) -> Result<Page<AuditRow>, ProjectionError> {
    let mut sql = Sql::new(
        "SELECT position, tenant, actor, action, aggregate_type, aggregate_id, occurred_at_ms, request_id, details \
         FROM audit_log WHERE 1 = 1",
    );
    if let Some(tenant) = &f.tenant {
        sql.push(" AND tenant = ").bind_text(tenant.as_str());
    }
    if let Some(actor) = &f.actor {
        sql.push(" AND actor = ").bind_text(actor.as_str());
    }
    if !f.actions.is_empty() {
        sql.push(" AND action IN (");
        for (i, action) in f.actions.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind_text(action.as_str());
        }
        sql.push(")");
    }
    if let Some(since) = f.since {
        sql.push(" AND occurred_at_ms >= ").bind_int(since.timestamp_millis());
    }
    if let Some(cursor) = f.cursor {
        sql.push(" AND position < ").bind_int(cursor);
    }
    sql.push(" ORDER BY position DESC LIMIT ").bind_int(f.limit + 1);
    let rows = sql.fetch_all(db).await?;
    let rows = rows
        .iter()
        .map(|r| {
            let position: i64 = r.try_get("position")?;
            Ok((
                position,
                AuditRow {
                    position,
                    tenant: r.try_get("tenant")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    aggregate_type: r.try_get("aggregate_type")?,
                    aggregate_id: r.try_get("aggregate_id")?,
                    occurred_at: time(r.try_get("occurred_at_ms")?),
                    request_id: r.try_get("request_id")?,
                    details: parse_json(&r.try_get::<String, _>("details")?, "details")?,
                },
            ))
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    Ok(page(rows, f.limit))
}

// ---------------- endpoints ----------------

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRow {
    pub id: String,
    pub route_id: String,
    pub path: String,
    pub methods: Vec<String>,
    pub plugin: String,
    pub description: String,
    pub required_scopes: Vec<String>,
    pub request_schema: Option<serde_json::Value>,
    pub response_schema: Option<serde_json::Value>,
    pub upstream_url: String,
    pub deprecated: bool,
    pub sunset_at: Option<DateTime<Utc>>,
    pub active: bool,
    /// Active and not disabled by the tenant the query was made for.
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who is looking decides what the explorer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Active endpoints enabled for the tenant.
    EnabledOnly,
    /// Every active endpoint, with its enabled flag (tenant admins may re-enable).
    Active,
    /// Everything, inactive too (superusers).
    All,
}

#[derive(Debug, Clone)]
pub struct EndpointFilter {
    pub tenant: String,
    pub visibility: Visibility,
    /// Free text over path and description, case-insensitive.
    pub search: Option<String>,
    pub plugin: Option<String>,
    pub method: Option<String>,
    /// `Some(true)`: active only; `Some(false)`: inactive only (superusers).
    pub active: Option<bool>,
    pub deprecated: Option<bool>,
    pub limit: i64,
    /// (path, endpoint id) of the last row of the previous page.
    pub after: Option<(String, String)>,
}

fn endpoint_select(sql: &mut Sql, tenant: &str) {
    sql.push(
        "SELECT * FROM (SELECT e.endpoint_id, e.route_id, e.path, e.methods, e.plugin, e.description, \
         e.required_scopes, e.request_schema, e.response_schema, e.upstream_url, e.deprecated, e.sunset_at_ms, \
         e.active, e.created_at_ms, e.updated_at_ms, \
         CASE WHEN e.active = 1 AND NOT EXISTS (SELECT 1 FROM endpoint_tenant_settings s \
           WHERE s.endpoint_id = e.endpoint_id AND s.enabled = 0 AND s.tenant = ",
    )
    .bind_text(tenant)
    .push(") THEN 1 ELSE 0 END AS enabled FROM endpoints e) x WHERE 1 = 1");
}

fn endpoint_row(r: &AnyRow) -> Result<EndpointRow, ProjectionError> {
    let schema = |col: &str| -> Result<Option<serde_json::Value>, ProjectionError> {
        r.try_get::<Option<String>, _>(col)?
            .map(|s| parse_json(&s, col))
            .transpose()
    };
    Ok(EndpointRow {
        id: r.try_get("endpoint_id")?,
        route_id: r.try_get("route_id")?,
        path: r.try_get("path")?,
        methods: parse_json(&r.try_get::<String, _>("methods")?, "methods")?,
        plugin: r.try_get("plugin")?,
        description: r.try_get("description")?,
        required_scopes: parse_json(&r.try_get::<String, _>("required_scopes")?, "required_scopes")?,
        request_schema: schema("request_schema")?,
        response_schema: schema("response_schema")?,
        upstream_url: r.try_get("upstream_url")?,
        deprecated: r.try_get::<i64, _>("deprecated")? == 1,
        sunset_at: opt_time(r.try_get("sunset_at_ms")?),
        active: r.try_get::<i64, _>("active")? == 1,
        enabled: r.try_get::<i64, _>("enabled")? == 1,
        created_at: time(r.try_get("created_at_ms")?),
        updated_at: time(r.try_get("updated_at_ms")?),
    })
}

/// Escapes LIKE wildcards so a search for `50%` means the text "50%".
fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Cursors for path-ordered pages: the last (path, id), hex-encoded so it survives any URL.
pub fn encode_path_cursor(path: &str, id: &str) -> String {
    format!("{path}\n{id}").bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_path_cursor(cursor: &str) -> Option<(String, String)> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 4_096 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (path, id) = text.split_once('\n')?;
    Some((path.to_owned(), id.to_owned()))
}

/// The explorer: endpoints in path order, filtered and paged.
pub async fn list_endpoints(db: &Database, f: &EndpointFilter) -> Result<Page<EndpointRow>, ProjectionError> {
    let mut sql = Sql::default();
    endpoint_select(&mut sql, &f.tenant);
    match f.visibility {
        Visibility::EnabledOnly => {
            sql.push(" AND enabled = 1");
        }
        Visibility::Active => {
            sql.push(" AND active = 1");
        }
        Visibility::All => {}
    }
    if let Some(active) = f.active {
        sql.push(" AND active = ").bind_int(i64::from(active));
    }
    if let Some(deprecated) = f.deprecated {
        sql.push(" AND deprecated = ").bind_int(i64::from(deprecated));
    }
    if let Some(search) = f.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let pattern = like_pattern(search.trim());
        sql.push(" AND (LOWER(path) LIKE ")
            .bind_text(pattern.clone())
            .push(" ESCAPE '\\'");
        sql.push(" OR LOWER(description) LIKE ")
            .bind_text(pattern)
            .push(" ESCAPE '\\')");
    }
    if let Some(plugin) = &f.plugin {
        sql.push(" AND LOWER(plugin) = ").bind_text(plugin.to_lowercase());
    }
    if let Some(method) = &f.method {
        sql.push(" AND methods LIKE ")
            .bind_text(format!("%\"{}\"%", method.to_uppercase()));
    }
    if let Some((path, id)) = &f.after {
        sql.push(" AND (path > ").bind_text(path.as_str());
        sql.push(" OR (path = ").bind_text(path.as_str());
        sql.push(" AND endpoint_id > ").bind_text(id.as_str()).push("))");
    }
    sql.push(" ORDER BY path, endpoint_id LIMIT ").bind_int(f.limit + 1);
    let rows = sql.fetch_all(db).await?;
    let mut data = rows.iter().map(endpoint_row).collect::<Result<Vec<_>, _>>()?;
    let more = data.len() as i64 > f.limit;
    data.truncate(f.limit as usize);
    let next_cursor = if more {
        data.last().map(|e| encode_path_cursor(&e.path, &e.id))
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}

pub async fn get_endpoint(db: &Database, id: &str, tenant: &str) -> Result<Option<EndpointRow>, ProjectionError> {
    let mut sql = Sql::default();
    endpoint_select(&mut sql, tenant);
    sql.push(" AND endpoint_id = ").bind_text(id);
    let rows = sql.fetch_all(db).await?;
    rows.first().map(endpoint_row).transpose()
}

/// Every endpoint the tenant can call (tenant OpenAPI, SDKs), in path order.
pub async fn enabled_endpoints(db: &Database, tenant: &str) -> Result<Vec<EndpointRow>, ProjectionError> {
    let mut sql = Sql::default();
    endpoint_select(&mut sql, tenant);
    sql.push(" AND enabled = 1 ORDER BY path, endpoint_id");
    let rows = sql.fetch_all(db).await?;
    rows.iter().map(endpoint_row).collect()
}
