//! `api_keys`: the key list admins page through, one row per key, derived from the key's
//! folded state (kept in the row's `state`).
use crate::sql::{opt_time, page, parse_json, Page, Sql};
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{corrupt, json, ms, Applied, FoldedKeys, Shared};
use crate::rows::{self, Cell};
use crate::ProjectionError;
use keyledger_domain::api_key::{ExpiryWarning, IssuedKey};
use keyledger_domain::ApiKey;
use sqlx::AnyConnection;

const INTO: &str = "api_keys (key_id, tenant, expires_at_ms, status, expiry_stage, position, state)";

// The list's order (position of the issue) never changes after the insert.
const UPSERT: &str = "ON CONFLICT (key_id) DO UPDATE SET expires_at_ms = excluded.expires_at_ms, \
     status = excluded.status, expiry_stage = excluded.expiry_stage, state = excluded.state";

/// What the expiry scheduler still owes the key.
fn expiry_stage(key: &IssuedKey) -> &'static str {
    if key.warnings_sent.contains(&ExpiryWarning::OneDay) {
        "one_day"
    } else if key.warnings_sent.contains(&ExpiryWarning::SevenDays) {
        "seven_days"
    } else {
        "none"
    }
}

fn row(key: &IssuedKey, state: &ApiKey, position: i64) -> Vec<Cell> {
    vec![
        key.id.to_string().into(),
        key.tenant.as_str().into(),
        key.expires_at.map(ms).into(),
        key.recorded_status.as_str().into(),
        expiry_stage(key).into(),
        position.into(),
        json(state).into(),
    ]
}

pub(super) async fn apply(
    conn: &mut AnyConnection,
    events: &[Applied],
    shared: &mut Shared,
) -> Result<(), ProjectionError> {
    let Some(FoldedKeys { states, issued_at, .. }) = shared.keys(conn, "api_keys", events).await? else {
        return Ok(());
    };
    let rows = states
        .iter()
        .filter_map(|(id, state)| {
            let key = state.issued()?;
            // Keys issued before this batch keep the position their row already has.
            Some(row(key, state, issued_at.get(id.as_str()).copied().unwrap_or(0)))
        })
        .collect();
    rows::insert(conn, INTO, UPSERT, rows).await
}

// ---- queries ----

/// A key as the list holds it: its folded state, and what the edge has seen of it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub key: IssuedKey,
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

const KEY_COLUMNS: &str = "key_id, tenant, status, expires_at_ms, position, state, \
     (SELECT u.last_used_at_ms FROM key_usage u WHERE u.key_id = api_keys.key_id) AS last_used_at_ms, \
     (SELECT u.requests FROM key_usage u WHERE u.key_id = api_keys.key_id) AS requests, ";

fn effective_status(sql: &mut Sql, now_ms: i64) {
    sql.push("CASE WHEN status = 'active' AND expires_at_ms IS NOT NULL AND expires_at_ms <= ")
        .bind_int(now_ms)
        .push(" THEN 'expired' ELSE status END");
}

fn key_row(r: &AnyRow) -> Result<(i64, KeyRow), ProjectionError> {
    let state: ApiKey = parse_json(&r.try_get::<String, _>("state")?, "api_keys.state")?;
    let key = state
        .issued()
        .cloned()
        .ok_or_else(|| corrupt("api_keys.state", "a listed key that was never issued"))?;
    Ok((
        r.try_get("position")?,
        KeyRow {
            key,
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

/// How many keys a tenant (or, with `None`, every tenant) has, and how many are active now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyCounts {
    pub total: i64,
    pub active: i64,
}

pub async fn count_keys(db: &Database, tenant: Option<&str>, now: DateTime<Utc>) -> Result<KeyCounts, ProjectionError> {
    let mut sql = Sql::new("SELECT CAST(COUNT(*) AS BIGINT) AS total, CAST(COALESCE(SUM(CASE WHEN ");
    effective_status(&mut sql, now.timestamp_millis());
    sql.push(" = 'active' THEN 1 ELSE 0 END), 0) AS BIGINT) AS active FROM api_keys WHERE 1 = 1");
    if let Some(tenant) = tenant {
        sql.push(" AND tenant = ").bind_text(tenant);
    }
    let rows = sql.fetch_all(db).await?;
    let Some(row) = rows.first() else {
        return Ok(KeyCounts::default());
    };
    Ok(KeyCounts {
        total: row.try_get("total")?,
        active: row.try_get("active")?,
    })
}

/// The names of the keys `ids` (those it has), for the webhook dispatcher's messages.
pub(crate) async fn names(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, ProjectionError> {
    let mut names = std::collections::HashMap::new();
    for (id, state) in rows::states(conn, "api_keys", "key_id", ids).await? {
        let state: ApiKey = parse_json(&state, "api_keys.state")?;
        if let Some(key) = state.issued() {
            names.insert(id, key.name.as_str().to_owned());
        }
    }
    Ok(names)
}
