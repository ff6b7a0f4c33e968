//! Which domain events receivers hear of, under which public type, with which fields: the one
//! mapping from the event log to webhook messages. Secrets, hashes and lookup ids never appear.

use super::EventType;
use crate::api_key::{ApiKeyEvent, ExpiryWarning};
use crate::endpoint::EndpointEvent;
use crate::tenant::TenantId;
use crate::webhook::alert::AlertEvent;
use crate::webhook::subscription::WebhookEvent;
use crate::AdminTokenEvent;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// Whose subscriptions hear of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The tenant the event belongs to.
    Tenant(TenantId),
    /// Every tenant: the endpoint catalogue is shared.
    Everyone,
}

/// An event as receivers get it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub event_type: EventType,
    pub audience: Audience,
    pub at: DateTime<Utc>,
    /// The fields of the message's `data`.
    pub data: Value,
}

/// What the log knows of a subject beside the event itself (its name, an endpoint's route),
/// read from the read models, since most events carry only what changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    pub name: Option<String>,
    pub path: Option<String>,
    pub methods: Option<Vec<String>>,
    /// A subscription's URL.
    pub url: Option<String>,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn data(fields: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<_, _>>(),
    )
}

/// The notice of an API key's event (`tenant` from the event's metadata).
pub fn of_key(key_id: Uuid, tenant: TenantId, event: &ApiKeyEvent, subject: &Subject) -> Option<Notice> {
    use ApiKeyEvent::*;
    let name = json!(subject.name);
    let (event_type, mut fields) = match event {
        KeyIssued {
            name,
            environment,
            scopes,
            expires_at,
            ..
        } => (
            EventType::KeyCreated,
            vec![
                ("name", json!(name.as_str())),
                ("environment", json!(environment.as_str())),
                ("scopes", json!(scopes)),
                ("expires_at", json!(expires_at.map(time))),
            ],
        ),
        KeyRenamed { name: new, .. } => (
            EventType::KeyChanged,
            vec![("name", json!(new.as_str())), ("changed", json!("name"))],
        ),
        KeyScopesChanged { scopes, .. } => (
            EventType::KeyChanged,
            vec![("name", name), ("changed", json!("scopes")), ("scopes", json!(scopes))],
        ),
        KeyRateLimitsChanged { rate_limits, .. } => (
            EventType::KeyChanged,
            vec![
                ("name", name),
                ("changed", json!("rate_limits")),
                ("rate_limits", json!(rate_limits)),
            ],
        ),
        KeyIpRulesChanged { ip_rules, .. } => (
            EventType::KeyChanged,
            vec![
                ("name", name),
                ("changed", json!("ip_rules")),
                ("ip_rules", json!(ip_rules)),
            ],
        ),
        KeyRotated {
            previous_valid_until, ..
        } => (
            EventType::KeyRotated,
            vec![
                ("name", name),
                ("previous_valid_until", json!(time(*previous_valid_until))),
            ],
        ),
        KeyRevoked { reason, .. } => (EventType::KeyRevoked, vec![("name", name), ("reason", json!(reason))]),
        KeyExpiryWarned {
            warning, expires_at, ..
        } => (
            EventType::KeyExpiring,
            vec![
                ("name", name),
                ("expires_at", json!(time(*expires_at))),
                (
                    "warning",
                    json!(match warning {
                        ExpiryWarning::SevenDays => "7d",
                        ExpiryWarning::OneDay => "1d",
                    }),
                ),
            ],
        ),
        KeyExpired { .. } => (EventType::KeyExpired, vec![("name", name)]),
    };
    fields.insert(0, ("key_id", json!(key_id)));
    Some(Notice {
        event_type,
        audience: Audience::Tenant(tenant),
        at: event.at(),
        data: data(fields),
    })
}

/// The notice of an endpoint's event: activation and deactivation, for every tenant when global
/// and for one when per tenant, and deprecation. Other changes are not announced.
pub fn of_endpoint(event: &EndpointEvent, subject: &Subject) -> Option<Notice> {
    use EndpointEvent::*;
    let (event_type, audience, at, extra) = match event {
        EndpointActivated { at, .. } => (EventType::EndpointActivated, Audience::Everyone, *at, None),
        EndpointDeactivated { at, .. } => (EventType::EndpointDeactivated, Audience::Everyone, *at, None),
        EndpointEnabledForTenant { tenant, at, .. } => (
            EventType::EndpointActivated,
            Audience::Tenant(tenant.clone()),
            *at,
            None,
        ),
        EndpointDisabledForTenant { tenant, at, .. } => (
            EventType::EndpointDeactivated,
            Audience::Tenant(tenant.clone()),
            *at,
            None,
        ),
        EndpointDeprecated { sunset, at, .. } => (
            EventType::EndpointDeprecated,
            Audience::Everyone,
            *at,
            Some(json!(sunset.map(time))),
        ),
        EndpointRegistered { .. }
        | EndpointChanged { .. }
        | EndpointSchemasChanged { .. }
        | EndpointUndeprecated { .. } => return None,
    };
    let mut fields = vec![
        ("endpoint_id", json!(event.endpoint_id())),
        ("path", json!(subject.path)),
        ("methods", json!(subject.methods)),
    ];
    if let Some(sunset) = extra {
        fields.push(("sunset", sunset));
    }
    Some(Notice {
        event_type,
        audience,
        at,
        data: data(fields),
    })
}

/// The notice of an admin token's event. The token's secret and fingerprint stay out.
pub fn of_token(token_id: Uuid, tenant: TenantId, event: &AdminTokenEvent, subject: &Subject) -> Option<Notice> {
    let (event_type, at, fields) = match event {
        AdminTokenEvent::AdminTokenIssued {
            name,
            permissions,
            expires_at,
            at,
            ..
        } => (
            EventType::TokenCreated,
            *at,
            vec![
                ("name", json!(name.as_str())),
                ("permissions", json!(permissions)),
                ("expires_at", json!(expires_at.map(time))),
            ],
        ),
        AdminTokenEvent::AdminTokenDeleted { at, .. } => {
            (EventType::TokenDeleted, *at, vec![("name", json!(subject.name))])
        }
    };
    let mut fields = fields;
    fields.insert(0, ("token_id", json!(token_id)));
    Some(Notice {
        event_type,
        audience: Audience::Tenant(tenant),
        at,
        data: data(fields),
    })
}

/// The notice of a subscription's event: only its disabling is news to receivers (its own
/// receiver no longer hears anything; the tenant's others do).
pub fn of_webhook(webhook_id: Uuid, tenant: TenantId, event: &WebhookEvent, subject: &Subject) -> Option<Notice> {
    let WebhookEvent::WebhookDisabled { reason, at } = event else {
        return None;
    };
    Some(Notice {
        event_type: EventType::WebhookDisabled,
        audience: Audience::Tenant(tenant),
        at: *at,
        data: data([
            ("webhook_id", json!(webhook_id)),
            ("url", json!(subject.url)),
            ("reason", json!(reason)),
        ]),
    })
}

/// The notice of an alert rule's event: its firing is a `usage.alert`.
pub fn of_alert(rule_id: Uuid, tenant: TenantId, event: &AlertEvent) -> Option<Notice> {
    let AlertEvent::AlertFired {
        name,
        rule,
        figures,
        value,
        at,
    } = event
    else {
        return None;
    };
    Some(Notice {
        event_type: EventType::UsageAlert,
        audience: Audience::Tenant(tenant),
        at: *at,
        data: data([
            ("rule_id", json!(rule_id)),
            ("name", json!(name.as_str())),
            ("subject", json!(rule.subject)),
            ("metric", json!(rule.metric)),
            ("threshold", json!(rule.threshold)),
            ("window_minutes", json!(rule.window_minutes)),
            ("value", json!(value)),
            ("requests", json!(figures.requests)),
            ("errors", json!(figures.errors)),
            ("rate_limited", json!(figures.rate_limited)),
        ]),
    })
}

#[cfg(test)]
mod tests;
