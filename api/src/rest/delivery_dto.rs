//! Bodies of the webhook delivery log.

use async_graphql::{Json as GqlJson, SimpleObject};
use chrono::{DateTime, Utc};
use keyledger_projections::dispatch::deliveries::{AttemptRow, DeliveryRow, DeliveryStats};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Filters of the delivery log; a page of it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryListParams {
    /// One subscription's deliveries.
    pub webhook_id: Option<String>,
    /// `pending`, `held` (its subscription is paused), `delivered` or `failed`.
    pub status: Option<String>,
    /// One event type, e.g. `key.revoked`.
    pub event_type: Option<String>,
    /// Superusers: one tenant's (default: every tenant's).
    pub tenant: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecoverParams {
    /// Failed deliveries made since this time (RFC 3339) are sent again.
    pub since: String,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// One subscription's figures (default: all the tenant's).
    pub webhook_id: Option<String>,
    /// Superusers: one tenant's (default: every tenant's).
    pub tenant: Option<String>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "WebhookAttempt")]
pub struct AttemptView {
    /// 1 for the first.
    pub attempt: i64,
    pub url: String,
    /// The receiver answered 2xx.
    pub delivered: bool,
    /// The receiver's status; none when no answer came (timeout, refused, blocked address).
    pub status_code: Option<i64>,
    pub error: Option<String>,
    /// The body sent.
    pub request_body: String,
    /// The first 4 KiB of the receiver's answer.
    pub response_body: Option<String>,
    pub duration_ms: i64,
    pub at: DateTime<Utc>,
    /// When the next attempt was due after this one; none after the last.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<AttemptRow> for AttemptView {
    fn from(r: AttemptRow) -> Self {
        AttemptView {
            attempt: r.attempt,
            url: r.url,
            delivered: r.delivered,
            status_code: r.status_code,
            error: r.error,
            request_body: r.request_body,
            response_body: r.response_body,
            duration_ms: r.duration_ms,
            at: r.at,
            next_attempt_at: r.next_attempt_at,
        }
    }
}

/// An event on its way to one subscription.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "WebhookDelivery")]
pub struct DeliveryView {
    /// The `webhook-id` every attempt carries (`msg_…`).
    pub id: String,
    pub webhook_id: String,
    pub tenant: String,
    pub event_type: String,
    /// `pending`, `held` (its subscription is paused), `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// The event as the default body carries it: `type`, `timestamp`, `tenant`, `data`.
    #[schema(value_type = Object)]
    pub message: GqlJson<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every attempt, first first (reading one delivery only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptView>>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(r: DeliveryRow) -> Self {
        DeliveryView {
            id: r.id,
            webhook_id: r.webhook_id,
            tenant: r.tenant,
            event_type: r.event_type,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            message: GqlJson(r.message),
            created_at: r.created_at,
            updated_at: r.updated_at,
            attempt_log: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "WebhookRecovery")]
pub struct RecoveredView {
    /// Failed deliveries sent again.
    pub recovered: i64,
}

/// Figures over one period.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "WebhookPeriodStats")]
pub struct PeriodStatsView {
    /// `24h`, `7d` or `30d`, up to now.
    pub period: String,
    /// Deliveries made in the period.
    pub deliveries: i64,
    pub delivered: i64,
    pub failed: i64,
    /// Still being tried, or held.
    pub pending: i64,
    /// Delivered ÷ (delivered + failed); none before any delivery is done.
    pub success_rate: Option<f64>,
    /// Attempts sent in the period.
    pub attempts: i64,
    pub avg_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<i64>,
}

impl PeriodStatsView {
    pub fn new(period: &str, s: DeliveryStats) -> Self {
        let done = s.delivered + s.failed;
        PeriodStatsView {
            period: period.to_owned(),
            deliveries: s.deliveries,
            delivered: s.delivered,
            failed: s.failed,
            pending: s.pending,
            success_rate: (done > 0).then(|| s.delivered as f64 / done as f64),
            attempts: s.attempts,
            avg_duration_ms: s.avg_duration_ms,
            p95_duration_ms: s.p95_duration_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "WebhookStats")]
pub struct StatsView {
    /// The subscription the figures are of; none for all of them.
    pub webhook_id: Option<String>,
    pub periods: Vec<PeriodStatsView>,
}
