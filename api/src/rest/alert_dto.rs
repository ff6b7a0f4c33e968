//! Bodies of the usage alert rules.

use async_graphql::{InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use keyledger_domain::webhook::alert::AlertSubject;
use keyledger_projections::alert_rules::AlertRuleRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A rule: a figure of a key, an endpoint or the whole tenant over a window, above a threshold,
/// fires a `usage.alert` once per breach.
#[derive(Debug, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "CreateAlertRuleInput")]
pub struct CreateAlertRuleBody {
    pub name: String,
    /// `rate_limit_hits` (requests refused by a rate limit), `error_rate` (4xx and 5xx, percent
    /// of requests), `requests`, or `key_expiry` (fires when fewer hours than the threshold
    /// remain; a rule on a key).
    pub metric: String,
    pub threshold: f64,
    /// Minutes the figure is summed over, 1 to 1440 (default 5).
    pub window_minutes: Option<u32>,
    /// The rule is about this key (neither this nor `endpoint_id`: every request of the tenant).
    pub key_id: Option<String>,
    /// The rule is about this endpoint.
    pub endpoint_id: Option<String>,
    /// Superusers may create for another tenant; default: the caller's.
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "AlertRule")]
pub struct AlertRuleView {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub metric: String,
    pub threshold: f64,
    pub window_minutes: u32,
    pub key_id: Option<String>,
    pub endpoint_id: Option<String>,
    /// `clear`, or `breached` (it fired, and has not come back under its threshold since).
    pub state: String,
    /// Times it fired.
    pub fired: i64,
    pub last_fired_at: Option<DateTime<Utc>>,
    /// The figure when it last fired.
    pub last_value: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<AlertRuleRow> for AlertRuleView {
    fn from(r: AlertRuleRow) -> Self {
        let (key_id, endpoint_id) = match r.rule.subject {
            AlertSubject::Key(id) => (Some(id), None),
            AlertSubject::Endpoint(id) => (None, Some(id)),
            AlertSubject::Tenant => (None, None),
        };
        AlertRuleView {
            id: r.id,
            tenant: r.tenant,
            name: r.name,
            metric: serde_json::to_value(r.rule.metric)
                .ok()
                .and_then(|m| m.as_str().map(str::to_owned))
                .unwrap_or_default(),
            threshold: r.rule.threshold,
            window_minutes: r.rule.window_minutes,
            key_id,
            endpoint_id,
            state: r.state,
            fired: r.fired,
            last_fired_at: r.last_fired_at,
            last_value: r.last_value,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}
