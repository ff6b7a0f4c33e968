//! `admin_tokens`: every token issued, with its deletion.
use crate::sql::{opt_time, page, parse_json, time, Page, Sql};
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{json, ms, Applied, Decoded};
use crate::rows::{self, Cell};
use crate::ProjectionError;
use keyledger_commands::auth::TokenEntry;
use keyledger_commands::StoreError;
use keyledger_domain::key_format::SecretHash;
use keyledger_domain::{AdminTokenEvent, ScopeGrant, TenantId};
use sqlx::AnyConnection;
use std::collections::HashMap;
use uuid::Uuid;

const INTO: &str = "admin_tokens (token_id, tenant, name, permissions, scopes, fingerprint, secret_hash, \
     expires_at_ms, created_at_ms, deleted_at_ms, position)";
const DELETED_AT: usize = 9;

pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    let mut issued: Vec<Vec<Cell>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut deleted: Vec<(String, i64)> = Vec::new();
    for e in events {
        match &e.decoded {
            Decoded::Token(AdminTokenEvent::AdminTokenIssued {
                token_id,
                tenant,
                name,
                permissions,
                scopes,
                expires_at,
                fingerprint,
                secret_hash,
                at,
            }) => {
                index.insert(token_id.to_string(), issued.len());
                issued.push(vec![
                    token_id.to_string().into(),
                    tenant.as_str().into(),
                    name.as_str().into(),
                    json(permissions).into(),
                    json(scopes).into(),
                    fingerprint.as_str().into(),
                    secret_hash.as_phc().into(),
                    expires_at.map(ms).into(),
                    ms(*at).into(),
                    Cell::Int(None),
                    e.logged.position.into(),
                ]);
            }
            Decoded::Token(AdminTokenEvent::AdminTokenDeleted { token_id, at }) => {
                let id = token_id.to_string();
                // Issued and deleted in one batch: the row is written once, deleted.
                match index.get(&id) {
                    Some(&i) => issued[i][DELETED_AT] = Cell::Int(Some(ms(*at))),
                    None => deleted.push((id, ms(*at))),
                }
            }
            _ => {}
        }
    }
    rows::insert(conn, INTO, "", issued).await?;
    // Deletions are rare: one statement each.
    for (id, at) in deleted {
        sqlx::query("UPDATE admin_tokens SET deleted_at_ms = $1 WHERE token_id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

// ---- queries ----

const LIVE: &str = "SELECT token_id, tenant, permissions, scopes, fingerprint, secret_hash, expires_at_ms \
     FROM admin_tokens WHERE deleted_at_ms IS NULL";

/// A live token's row as authentication needs it, with its fingerprint.
fn live_entry(r: &AnyRow) -> Result<(String, TokenEntry), ProjectionError> {
    let id: String = r.try_get("token_id")?;
    let corrupt =
        |e: &dyn std::fmt::Display| ProjectionError::Store(StoreError::Corrupt(format!("admin token {id}: {e}")));
    let entry = TokenEntry {
        token_id: Uuid::parse_str(&id).map_err(|e| corrupt(&e))?,
        tenant: TenantId::try_from(r.try_get::<String, _>("tenant")?).map_err(|e| corrupt(&e))?,
        permissions: parse_json(&r.try_get::<String, _>("permissions")?, "permissions")?,
        scopes: parse_json(&r.try_get::<String, _>("scopes")?, "scopes")?,
        secret_hash: SecretHash::from_phc(r.try_get("secret_hash")?),
        expires_at_ms: r.try_get("expires_at_ms")?,
    };
    Ok((r.try_get("fingerprint")?, entry))
}

/// Every live token with its fingerprint (the node copy's snapshot).
pub(crate) async fn live_tokens(conn: &mut AnyConnection) -> Result<Vec<(String, TokenEntry)>, ProjectionError> {
    let rows = sqlx::query(LIVE).fetch_all(conn).await?;
    rows.iter().map(live_entry).collect()
}

/// The live token with `fingerprint`, if any.
pub(crate) async fn live_token(db: &Database, fingerprint: &str) -> Result<Option<TokenEntry>, ProjectionError> {
    let row = sqlx::query(&format!("{LIVE} AND fingerprint = $1"))
        .bind(fingerprint)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.as_ref().map(live_entry).transpose()?.map(|(_, entry)| entry))
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub permissions: Vec<String>,
    pub scopes: ScopeGrant,
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

/// The names of the tokens `ids` (those it has), for the webhook dispatcher's messages.
pub(crate) async fn names(
    conn: &mut sqlx::AnyConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, ProjectionError> {
    let rows = crate::rows::where_in(conn, "SELECT token_id, name FROM admin_tokens", "token_id", ids).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("token_id")?, r.try_get("name")?)))
        .collect()
}
