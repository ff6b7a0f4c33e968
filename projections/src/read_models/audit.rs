//! `audit_log`: every event for auditors, indexed by tenant, actor and action; the rest of an
//! entry (aggregate, request id, redacted payload) is read from the event itself.

use super::{corrupt, ms, Applied, Decoded};
use crate::rows::{self, Cell};
use crate::sql::{page, parse_json, time, Page, Sql};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::log::parse_metadata;
use keyledger_commands::Database;
use keyledger_domain::AdminTokenEvent;
use sqlx::AnyConnection;
use sqlx::Row;

const INTO: &str = "audit_log (position, tenant, actor, action, occurred_at_ms)";

pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    let rows = events
        .iter()
        .map(|e| {
            let logged = &e.logged;
            let occurred_at = match &e.decoded {
                Decoded::Key(event) => Some(event.at()),
                Decoded::Token(AdminTokenEvent::AdminTokenIssued { at, .. })
                | Decoded::Token(AdminTokenEvent::AdminTokenDeleted { at, .. }) => Some(*at),
                Decoded::Endpoint(event) => Some(event.at()),
                Decoded::Template(event) => Some(event.at()),
                Decoded::Webhook(event) => Some(event.at()),
                Decoded::Alert(event) => Some(event.at()),
                Decoded::Other => None,
            }
            .or(logged.metadata.time)
            .map(ms)
            .unwrap_or_default();
            vec![
                Cell::from(logged.position),
                logged.metadata.tenant.as_str().into(),
                logged.metadata.actor.as_str().into(),
                logged.event_type.as_str().into(),
                occurred_at.into(),
            ]
        })
        .collect();
    rows::insert(conn, INTO, "", rows).await
}

/// The event's fields for auditors: the externally tagged payload unwrapped, secret hashes and
/// token fingerprints left out (they are not for display, even hashed).
pub fn details(payload: &serde_json::Value) -> serde_json::Value {
    let inner = match payload {
        serde_json::Value::Object(map) if map.len() == 1 => map.values().next().cloned().unwrap_or_default(),
        other => other.clone(),
    };
    match inner {
        serde_json::Value::Object(mut map) => {
            map.remove("secret_hash");
            map.remove("fingerprint");
            serde_json::Value::Object(map)
        }
        other => other,
    }
}

// ---- queries ----

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
    // What an entry shows beyond its index columns comes from its event (never changed or removed).
    let mut sql = Sql::new(
        "SELECT position, tenant, actor, action, occurred_at_ms, e.aggregate_type, e.aggregate_id, \
         CAST(e.metadata AS TEXT) AS metadata, CAST(e.payload AS TEXT) AS payload \
         FROM audit_log JOIN events e ON e.global_position = audit_log.position WHERE 1 = 1",
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
                    request_id: parse_metadata(&r.try_get::<String, _>("metadata")?)
                        .map_err(|e| corrupt(&format!("event {position} metadata"), e))?
                        .request_id,
                    details: details(&parse_json(&r.try_get::<String, _>("payload")?, "an event's payload")?),
                },
            ))
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    Ok(page(rows, f.limit))
}
