//! The read models and how each event changes them.

mod admin_tokens;
mod audit;
mod endpoints;
pub use audit::details as redacted_details;
mod key_list;
mod key_lookup;

use crate::ProjectionError;
use cqrs_es::Aggregate;
use keyledger_commands::log::LoggedEvent;
use keyledger_domain::{AdminToken, AdminTokenEvent, ApiKey, ApiKeyEvent, Endpoint, EndpointEvent};
use sqlx::AnyConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadModel {
    AdminTokens,
    KeyList,
    KeyLookup,
    Audit,
    Endpoints,
}

/// An event of a known aggregate, decoded once for all read models.
pub enum Decoded {
    Key(ApiKeyEvent),
    Token(AdminTokenEvent),
    Endpoint(EndpointEvent),
    Other,
}

pub fn decode(event: &LoggedEvent) -> Result<Decoded, ProjectionError> {
    let undecodable = |e: serde_json::Error| ProjectionError::Undecodable {
        position: event.position,
        event_type: event.event_type.clone(),
        reason: e.to_string(),
    };
    Ok(match event.aggregate_type.as_str() {
        t if t == ApiKey::TYPE => Decoded::Key(serde_json::from_value(event.payload.clone()).map_err(undecodable)?),
        t if t == AdminToken::TYPE => {
            Decoded::Token(serde_json::from_value(event.payload.clone()).map_err(undecodable)?)
        }
        t if t == Endpoint::TYPE => {
            Decoded::Endpoint(serde_json::from_value(event.payload.clone()).map_err(undecodable)?)
        }
        _ => Decoded::Other,
    })
}

impl ReadModel {
    pub const ALL: [ReadModel; 5] = [
        ReadModel::AdminTokens,
        ReadModel::KeyList,
        ReadModel::KeyLookup,
        ReadModel::Audit,
        ReadModel::Endpoints,
    ];

    /// The checkpoint name; also what `keyledger projections rebuild NAME` takes.
    pub fn name(self) -> &'static str {
        match self {
            ReadModel::AdminTokens => "admin_tokens",
            ReadModel::KeyList => "key_list",
            ReadModel::KeyLookup => "key_lookup",
            ReadModel::Audit => "audit",
            ReadModel::Endpoints => "endpoints",
        }
    }

    /// The tables this projection owns (emptied by a rebuild).
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            ReadModel::AdminTokens => &["admin_tokens"],
            ReadModel::KeyList => &["api_keys"],
            ReadModel::KeyLookup => &["key_lookup"],
            ReadModel::Audit => &["audit_log"],
            ReadModel::Endpoints => &["endpoints", "endpoint_tenant_settings"],
        }
    }

    pub fn parse(name: &str) -> Result<ReadModel, ProjectionError> {
        ReadModel::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            let known: Vec<&str> = ReadModel::ALL.iter().map(|m| m.name()).collect();
            ProjectionError::Unknown(name.to_owned(), known.join(", "))
        })
    }

    pub(crate) async fn apply(self, conn: &mut AnyConnection, event: &LoggedEvent) -> Result<(), ProjectionError> {
        let decoded = decode(event)?;
        match (self, &decoded) {
            (ReadModel::AdminTokens, Decoded::Token(e)) => admin_tokens::apply(conn, event, e).await,
            (ReadModel::KeyList, Decoded::Key(e)) => key_list::apply(conn, event, e).await,
            (ReadModel::KeyLookup, Decoded::Key(e)) => key_lookup::apply(conn, event, e).await,
            (ReadModel::Endpoints, Decoded::Endpoint(e)) => endpoints::apply(conn, event, e).await,
            (ReadModel::Audit, _) => audit::apply(conn, event, &decoded).await,
            _ => Ok(()),
        }
    }
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

pub(crate) fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}
