//! What a subscription listens to: the event types a delivery can carry, by their public names.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// An event a webhook can deliver, named as receivers see it (`key.created`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "key.created")]
    KeyCreated,
    #[serde(rename = "key.changed")]
    KeyChanged,
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    #[serde(rename = "key.rotated")]
    KeyRotated,
    #[serde(rename = "key.expiring")]
    KeyExpiring,
    #[serde(rename = "key.expired")]
    KeyExpired,
    #[serde(rename = "endpoint.activated")]
    EndpointActivated,
    #[serde(rename = "endpoint.deprecated")]
    EndpointDeprecated,
    #[serde(rename = "endpoint.deactivated")]
    EndpointDeactivated,
    #[serde(rename = "token.created")]
    TokenCreated,
    #[serde(rename = "token.deleted")]
    TokenDeleted,
    #[serde(rename = "usage.alert")]
    UsageAlert,
    /// A subscription was disabled: after persistent failure, or a 410 from its receiver.
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::KeyCreated,
        EventType::KeyChanged,
        EventType::KeyRevoked,
        EventType::KeyRotated,
        EventType::KeyExpiring,
        EventType::KeyExpired,
        EventType::EndpointActivated,
        EventType::EndpointDeprecated,
        EventType::EndpointDeactivated,
        EventType::TokenCreated,
        EventType::TokenDeleted,
        EventType::UsageAlert,
        EventType::WebhookDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::KeyCreated => "key.created",
            EventType::KeyChanged => "key.changed",
            EventType::KeyRevoked => "key.revoked",
            EventType::KeyRotated => "key.rotated",
            EventType::KeyExpiring => "key.expiring",
            EventType::KeyExpired => "key.expired",
            EventType::EndpointActivated => "endpoint.activated",
            EventType::EndpointDeprecated => "endpoint.deprecated",
            EventType::EndpointDeactivated => "endpoint.deactivated",
            EventType::TokenCreated => "token.created",
            EventType::TokenDeleted => "token.deleted",
            EventType::UsageAlert => "usage.alert",
            EventType::WebhookDisabled => "webhook.disabled",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventTypeError {
    #[error("unknown event type {0:?}; known: * or {known}", known = known())]
    Unknown(String),
    #[error("a subscription needs at least one event type (or *)")]
    None,
}

fn known() -> String {
    EventType::ALL.map(EventType::as_str).join(", ")
}

impl FromStr for EventType {
    type Err = EventTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| EventTypeError::Unknown(s.chars().take(64).collect()))
    }
}

/// The event types a subscription receives: every one (`*`, including types added later), or a
/// set of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTypes {
    All,
    Only(BTreeSet<EventType>),
}

impl EventTypes {
    /// From the names a client sends: `*` anywhere means every type.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<EventTypes, EventTypeError> {
        if names.is_empty() {
            return Err(EventTypeError::None);
        }
        if names.iter().any(|n| n.as_ref() == "*") {
            return Ok(EventTypes::All);
        }
        names
            .iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(EventTypes::Only)
    }

    pub fn matches(&self, event: EventType) -> bool {
        match self {
            EventTypes::All => true,
            EventTypes::Only(types) => types.contains(&event),
        }
    }

    /// As clients send them: `["*"]` or the names in order.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            EventTypes::All => vec!["*"],
            EventTypes::Only(types) => types.iter().map(|t| t.as_str()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_types_and_back_and_star_means_every_type() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        let some = EventTypes::parse(&["key.revoked", "key.created"]).unwrap();
        assert_eq!(some.names(), ["key.created", "key.revoked"]);
        assert!(some.matches(EventType::KeyRevoked));
        assert!(!some.matches(EventType::UsageAlert));
        let all = EventTypes::parse(&["key.created", "*"]).unwrap();
        assert_eq!(all, EventTypes::All);
        assert!(EventType::ALL.into_iter().all(|t| all.matches(t)));
    }

    #[test]
    fn an_unknown_or_empty_list_of_types_is_refused_saying_what_is_known() {
        let err = EventTypes::parse(&["key.created", "key.deleted"]).unwrap_err();
        assert_eq!(err, EventTypeError::Unknown("key.deleted".into()));
        assert!(err.to_string().contains("usage.alert"), "{err}");
        assert_eq!(EventTypes::parse::<&str>(&[]), Err(EventTypeError::None));
    }
}
