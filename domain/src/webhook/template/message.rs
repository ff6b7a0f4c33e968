//! What a delivery says: the event as receivers get it by default (the Standard Webhooks
//! payload: `type`, `timestamp`, `data`), and the words chat platforms show for it.

use crate::tenant::TenantId;
use crate::webhook::EventType;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// One event on its way to a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The `webhook-id`: the same for every attempt of this delivery.
    pub id: String,
    pub event_type: EventType,
    pub timestamp: DateTime<Utc>,
    pub tenant: TenantId,
    /// The event's own fields (a key's id and name, an alert's figures, …).
    pub data: Value,
}

/// Characters a field's value keeps in chat messages; longer ones end with an ellipsis.
const FIELD_VALUE: usize = 300;
/// Fields a chat message shows at most (Slack's section holds 10).
const FIELDS: usize = 10;

impl Message {
    /// The default body, and what custom templates see: `type`, `timestamp`, `tenant`, `data`.
    pub fn payload(&self) -> Value {
        json!({
            "type": self.event_type.as_str(),
            "timestamp": self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
            "tenant": self.tenant.as_str(),
            "data": self.data,
        })
    }

    /// The message a stored payload describes (as [`Message::payload`] wrote it), under its
    /// delivery's id.
    pub fn from_payload(id: String, payload: &Value) -> Option<Message> {
        Some(Message {
            id,
            event_type: payload.get("type")?.as_str()?.parse().ok()?,
            timestamp: DateTime::parse_from_rfc3339(payload.get("timestamp")?.as_str()?)
                .ok()?
                .with_timezone(&Utc),
            tenant: payload.get("tenant")?.as_str()?.parse().ok()?,
            data: payload.get("data")?.clone(),
        })
    }

    /// A headline in words: "API key revoked".
    pub fn title(&self) -> &'static str {
        match self.event_type {
            EventType::KeyCreated => "API key created",
            EventType::KeyChanged => "API key changed",
            EventType::KeyRevoked => "API key revoked",
            EventType::KeyRotated => "API key rotated",
            EventType::KeyExpiring => "API key expiring soon",
            EventType::KeyExpired => "API key expired",
            EventType::EndpointActivated => "Endpoint activated",
            EventType::EndpointDeprecated => "Endpoint deprecated",
            EventType::EndpointDeactivated => "Endpoint deactivated",
            EventType::TokenCreated => "Admin token created",
            EventType::TokenDeleted => "Admin token deleted",
            EventType::UsageAlert => "Usage alert",
            EventType::WebhookDisabled => "Webhook disabled",
        }
    }

    /// The headline with what it is about: "API key revoked: billing-service".
    pub fn summary(&self) -> String {
        let about = ["name", "path", "rule", "url"]
            .iter()
            .find_map(|f| self.data.get(*f).and_then(Value::as_str));
        match about {
            Some(about) => format!("{}: {}", self.title(), shortened(about)),
            None => self.title().to_owned(),
        }
    }

    /// The data's fields as (name, value) text, in order, the first ten, values shortened.
    pub fn fields(&self) -> Vec<(String, String)> {
        let Some(object) = self.data.as_object() else {
            return Vec::new();
        };
        object
            .iter()
            .filter_map(|(name, value)| {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Array(items) if items.iter().all(Value::is_string) => {
                        items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                    }
                    _ => return None,
                };
                Some((name.clone(), shortened(&text)))
            })
            .take(FIELDS)
            .collect()
    }

    /// "tenant acme · 2026-12-04T10:00:00Z · msg_…": where and when, for a footer.
    pub fn context(&self) -> String {
        format!(
            "tenant {} · {} · {}",
            self.tenant,
            self.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.id
        )
    }
}

fn shortened(text: &str) -> String {
    if text.chars().count() <= FIELD_VALUE {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(FIELD_VALUE - 1).collect();
    short.push('…');
    short
}
