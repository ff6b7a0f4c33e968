//! `endpoints` and `endpoint_tenant_settings`: the catalogue the explorer reads, one row per
//! endpoint derived from its folded state, plus the tenants that disabled it.
use crate::sql::{opt_time, parse_json, time, Page, Sql};
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{json, ms, touched, Applied, Decoded, States};
use crate::rows::{self, Cell};
use crate::ProjectionError;
use keyledger_domain::endpoint::RegisteredEndpoint;
use sqlx::AnyConnection;
use std::collections::HashMap;

const INTO: &str = "endpoints (endpoint_id, route_id, path, methods, plugin, description, required_scopes, \
     request_schema, response_schema, upstream_url, deprecated, deprecated_at_ms, sunset_at_ms, active, \
     created_at_ms, updated_at_ms, position, state)";

const UPSERT: &str = "ON CONFLICT (endpoint_id) DO UPDATE SET route_id = excluded.route_id, path = excluded.path, \
     methods = excluded.methods, plugin = excluded.plugin, description = excluded.description, \
     required_scopes = excluded.required_scopes, request_schema = excluded.request_schema, \
     response_schema = excluded.response_schema, upstream_url = excluded.upstream_url, \
     deprecated = excluded.deprecated, deprecated_at_ms = excluded.deprecated_at_ms, \
     sunset_at_ms = excluded.sunset_at_ms, active = excluded.active, updated_at_ms = excluded.updated_at_ms, \
     position = excluded.position, state = excluded.state";

/// The stored state: `None` until the endpoint's registration has been applied.
type State = Option<RegisteredEndpoint>;

pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    let ids = touched(events, |e| match &e.decoded {
        Decoded::Endpoint(event) => Some(event.endpoint_id().to_string()),
        _ => None,
    });
    if ids.is_empty() {
        return Ok(());
    }
    let mut states: States<State> = States::load(conn, "endpoints", "endpoint_id", ids.clone()).await?;
    // (route stream, last position) of each endpoint the batch touched.
    let mut seen: HashMap<String, (&str, i64)> = HashMap::new();
    for e in events {
        let Decoded::Endpoint(event) = &e.decoded else { continue };
        let id = event.endpoint_id().to_string();
        if let Some(state) = states.get_mut(&id) {
            match (RegisteredEndpoint::registered(event), state.as_mut()) {
                (Some(new), _) => *state = Some(new),
                (None, Some(endpoint)) => endpoint.apply(event.clone()),
                (None, None) => {}
            }
        }
        seen.insert(id, (e.logged.aggregate_id.as_str(), e.logged.position));
    }
    let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(ids.len());
    let mut disabled: Vec<Vec<Cell>> = Vec::new();
    for (id, state) in states.iter() {
        let Some(e) = state else { continue };
        let (route, position) = seen.get(id).copied().unwrap_or(("", 0));
        let s = &e.spec;
        rows.push(vec![
            id.as_str().into(),
            route.into(),
            s.path.to_string().into(),
            json(&s.methods).into(),
            s.plugin.to_string().into(),
            s.description.as_str().into(),
            json(&s.required_scopes).into(),
            s.request_schema.as_ref().map(json).into(),
            s.response_schema.as_ref().map(json).into(),
            s.upstream_url.as_str().into(),
            i64::from(e.deprecation.is_some()).into(),
            e.deprecation.as_ref().map(|d| ms(d.since)).into(),
            e.deprecation.as_ref().and_then(|d| d.sunset).map(ms).into(),
            i64::from(e.active).into(),
            ms(e.created_at).into(),
            ms(e.updated_at).into(),
            position.into(),
            json(&state).into(),
        ]);
        for tenant in &e.disabled_tenants {
            disabled.push(vec![id.as_str().into(), tenant.as_str().into(), 0i64.into()]);
        }
    }
    rows::insert(conn, INTO, UPSERT, rows).await?;
    rows::delete_where_in(conn, "endpoint_tenant_settings", "endpoint_id", &ids).await?;
    rows::insert(
        conn,
        "endpoint_tenant_settings (endpoint_id, tenant, enabled)",
        "",
        disabled,
    )
    .await
}

// ---- queries ----

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

/// Endpoints available to a tenant (active and enabled for it; with `None`, active at all), and
/// how many of them are deprecated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointCounts {
    pub total: i64,
    pub deprecated: i64,
}

pub async fn count_endpoints(db: &Database, tenant: Option<&str>) -> Result<EndpointCounts, ProjectionError> {
    let mut sql = Sql::default();
    // The tenant '' has no settings of its own: every active endpoint is enabled for it.
    endpoint_select(&mut sql, tenant.unwrap_or(""));
    let counted = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS total, CAST(COALESCE(SUM(deprecated), 0) AS BIGINT) AS deprecated \
         FROM ({} AND enabled = 1) available",
        sql.text()
    );
    let rows = sql.with_text(counted).fetch_all(db).await?;
    let Some(row) = rows.first() else {
        return Ok(EndpointCounts::default());
    };
    Ok(EndpointCounts {
        total: row.try_get("total")?,
        deprecated: row.try_get("deprecated")?,
    })
}

/// The path and methods of the endpoints `ids` (those it has), for the webhook dispatcher's
/// messages.
pub(crate) async fn routes(
    conn: &mut sqlx::AnyConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, (String, Vec<String>)>, ProjectionError> {
    let rows = crate::rows::where_in(
        conn,
        "SELECT endpoint_id, path, methods FROM endpoints",
        "endpoint_id",
        ids,
    )
    .await?;
    rows.iter()
        .map(|r| {
            let methods = parse_json(&r.try_get::<String, _>("methods")?, "methods")?;
            Ok((r.try_get("endpoint_id")?, (r.try_get("path")?, methods)))
        })
        .collect()
}
