use super::{ms, Decoded};
use crate::ProjectionError;
use keyledger_commands::log::LoggedEvent;
use sqlx::AnyConnection;

pub(super) async fn apply(
    conn: &mut AnyConnection,
    logged: &LoggedEvent,
    decoded: &Decoded,
) -> Result<(), ProjectionError> {
    let occurred_at = match decoded {
        Decoded::Key(e) => Some(e.at()),
        Decoded::Token(keyledger_domain::AdminTokenEvent::AdminTokenIssued { at, .. })
        | Decoded::Token(keyledger_domain::AdminTokenEvent::AdminTokenDeleted { at, .. }) => Some(*at),
        Decoded::Endpoint(e) => Some(e.at()),
        Decoded::Other => None,
    }
    .or(logged.metadata.time)
    .map(ms)
    .unwrap_or_default();
    sqlx::query(
        "INSERT INTO audit_log (position, tenant, actor, action, aggregate_type, aggregate_id, occurred_at_ms, \
         request_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(logged.position)
    .bind(&logged.metadata.tenant)
    .bind(&logged.metadata.actor)
    .bind(&logged.event_type)
    .bind(&logged.aggregate_type)
    .bind(&logged.aggregate_id)
    .bind(occurred_at)
    .bind(logged.metadata.request_id.as_deref())
    .bind(details(&logged.payload).to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
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
