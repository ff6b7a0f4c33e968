use super::{ms, Applied, Decoded};
use crate::rows::{self, Cell};
use crate::ProjectionError;
use keyledger_domain::AdminTokenEvent;
use sqlx::AnyConnection;

const INTO: &str = "audit_log (position, tenant, actor, action, aggregate_type, aggregate_id, occurred_at_ms, \
     request_id, details)";

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
                logged.aggregate_type.as_str().into(),
                logged.aggregate_id.as_str().into(),
                occurred_at.into(),
                logged.metadata.request_id.clone().into(),
                details(&logged.payload).to_string().into(),
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
