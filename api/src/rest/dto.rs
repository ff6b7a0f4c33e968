//! Request and response bodies of the admin REST API.

use crate::error::{ApiError, ErrorCode};
use async_graphql::{Enum, InputObject, OutputType, SimpleObject};
use chrono::{DateTime, Utc};
use keyledger_domain::api_key::IssuedKey;
use keyledger_domain::ip_rules::{CidrRule, IpRules};
use keyledger_domain::rate_limits::{RateLimits, RateLimitsInput};
use keyledger_domain::{Scope, TenantId};
use keyledger_projections::audit::AuditRow;
use keyledger_projections::key_list::KeyRow;
use keyledger_projections::Page;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;

pub use super::token_dto::*;

pub const DEFAULT_PAGE: i64 = 50;

/// A page of a tenant's list (superusers may name any tenant, or none for all).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TenantListParams {
    pub tenant: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(concrete(name = "ApiKeyPage", params(KeyView)))]
#[graphql(concrete(name = "AdminTokenPage", params(TokenView)))]
#[graphql(concrete(name = "AuditPage", params(AuditEntry)))]
#[graphql(concrete(name = "EndpointPage", params(super::endpoint_dto::EndpointView)))]
#[graphql(concrete(name = "WebhookTemplatePage", params(super::webhook_dto::TemplateView)))]
#[graphql(concrete(name = "WebhookPage", params(super::webhook_dto::WebhookView)))]
#[graphql(concrete(name = "WebhookDeliveryPage", params(super::delivery_dto::DeliveryView)))]
#[graphql(concrete(name = "AlertRulePage", params(super::alert_dto::AlertRuleView)))]
pub struct ListResponse<T: OutputType> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<R, T: From<R> + OutputType> From<Page<R>> for ListResponse<T> {
    fn from(p: Page<R>) -> Self {
        ListResponse {
            data: p.data.into_iter().map(T::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

pub fn limit(raw: Option<i64>) -> Result<i64, ApiError> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(l) if (1..=keyledger_projections::MAX_PAGE).contains(&l) => Ok(l),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be between 1 and {}", keyledger_projections::MAX_PAGE),
        )),
    }
}

pub fn cursor(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(c) => keyledger_projections::parse_cursor(c)
            .map(Some)
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidCursor, "cursor is not one this API returned")),
    }
}

pub fn tenant(raw: Option<String>) -> Result<Option<TenantId>, ApiError> {
    raw.map(|t| TenantId::try_from(t).map_err(|e| ApiError::new(ErrorCode::InvalidTenant, e.to_string())))
        .transpose()
}

pub fn name(raw: String) -> Result<keyledger_domain::name::Name, ApiError> {
    keyledger_domain::name::Name::try_from(raw).map_err(|e| ApiError::new(ErrorCode::InvalidName, e.to_string()))
}

pub fn scopes(raw: Vec<String>) -> Result<BTreeSet<Scope>, ApiError> {
    raw.into_iter()
        .map(|s| Scope::try_from(s).map_err(|e| ApiError::new(ErrorCode::InvalidScope, e.to_string())))
        .collect()
}

pub fn rate_limits(raw: RateLimitsBody) -> Result<RateLimits, ApiError> {
    RateLimits::try_from(RateLimitsInput {
        per_second: raw.per_second,
        per_minute: raw.per_minute,
        per_hour: raw.per_hour,
        per_day: raw.per_day,
        burst: raw.burst,
    })
    .map_err(|e| ApiError::new(ErrorCode::InvalidRateLimits, e.to_string()))
}

pub fn cidr_rules(list: Vec<String>) -> Result<Vec<CidrRule>, ApiError> {
    list.into_iter()
        .map(|r| CidrRule::try_from(r).map_err(|e| ApiError::new(ErrorCode::InvalidIpRule, e.to_string())))
        .collect()
}

pub fn ip_rules(allow: Vec<String>, block: Vec<String>) -> Result<IpRules, ApiError> {
    IpRules::new(cidr_rules(allow)?, cidr_rules(block)?)
        .map_err(|e| ApiError::new(ErrorCode::InvalidIpRule, e.to_string()))
}

/// Rate limits as sent by a client; omitted windows take the defaults (60/minute, 3600/hour).
#[derive(Debug, Default, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "RateLimitsInput")]
pub struct RateLimitsBody {
    pub per_second: Option<u64>,
    pub per_minute: Option<u64>,
    pub per_hour: Option<u64>,
    pub per_day: Option<u64>,
    pub burst: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, Default, Enum, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[graphql(name = "Environment")]
pub enum EnvironmentBody {
    #[default]
    Live,
    Test,
}

#[derive(Debug, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "CreateApiKeyInput")]
pub struct CreateKeyBody {
    pub name: String,
    #[serde(default)]
    #[graphql(default)]
    pub environment: EnvironmentBody,
    #[serde(default)]
    #[graphql(default)]
    pub scopes: Vec<String>,
    pub rate_limits: Option<RateLimitsBody>,
    #[serde(default)]
    #[graphql(default)]
    pub ip_allow: Vec<String>,
    #[serde(default)]
    #[graphql(default)]
    pub ip_block: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Superusers only: issue the key for another tenant.
    pub tenant: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "UpdateApiKeyInput")]
pub struct UpdateKeyBody {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub rate_limits: Option<RateLimitsBody>,
    pub ip_allow: Option<Vec<String>>,
    pub ip_block: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeKeyBody {
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyBody {
    /// How long the old secret keeps working: 0 to 604800 (7 days). Default 0.
    pub grace_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "RateLimits")]
pub struct RateLimitsView {
    pub per_second: Option<u32>,
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
    pub burst: Option<u32>,
}

impl From<&RateLimits> for RateLimitsView {
    fn from(r: &RateLimits) -> Self {
        RateLimitsView {
            per_second: r.per_second(),
            per_minute: r.per_minute(),
            per_hour: r.per_hour(),
            per_day: r.per_day(),
            burst: r.burst(),
        }
    }
}

/// An API key as admins see it. `key` (the plaintext) appears only in the answer to create and
/// rotate, once.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "ApiKey")]
pub struct KeyView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub tenant: String,
    pub name: String,
    pub environment: String,
    /// `ak_live_` + the key's public lookup id: enough to recognise a key, useless to use it.
    pub prefix: String,
    pub status: String,
    pub scopes: Vec<String>,
    pub rate_limits: RateLimitsView,
    pub ip_allow: Vec<String>,
    pub ip_block: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the edge last saw the key (allowed or denied); updated in batches.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Requests the edge has seen with the key.
    pub total_requests: i64,
}

impl KeyView {
    /// The one way a key is shown, by REST and GraphQL alike, whether it comes from the key
    /// list, a command's answer or the key's past (`as_of`): its state as of `now`, and what the
    /// edge has seen of it.
    pub fn of(k: &IssuedKey, now: DateTime<Utc>, last_used_at: Option<DateTime<Utc>>, total_requests: i64) -> Self {
        KeyView {
            id: k.id.to_string(),
            key: None,
            tenant: k.tenant.to_string(),
            name: k.name.to_string(),
            environment: k.environment.as_str().to_owned(),
            prefix: k.display_prefix(),
            status: k.status_at(now).as_str().to_owned(),
            scopes: k.scopes.iter().map(|s| s.to_string()).collect(),
            rate_limits: (&k.rate_limits).into(),
            ip_allow: k.ip_rules.allow().iter().map(|r| r.to_string()).collect(),
            ip_block: k.ip_rules.block().iter().map(|r| r.to_string()).collect(),
            expires_at: k.expires_at,
            created_at: k.created_at,
            updated_at: k.updated_at,
            revoked_at: k.revoked_at,
            last_used_at,
            total_requests,
        }
    }

    pub fn from_row(row: &KeyRow, now: DateTime<Utc>) -> Self {
        Self::of(&row.key, now, row.last_used_at, row.requests)
    }
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "KeyEvent")]
pub struct HistoryEntry {
    pub sequence: usize,
    pub event_type: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub actor: String,
    pub request_id: Option<String>,
    /// The event's fields, secret hashes left out.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl HistoryEntry {
    /// One stored event as the history endpoints show it, secret hashes left out.
    pub fn from_stored<E: Serialize>(e: keyledger_commands::bus::StoredEvent<E>, occurred_at: DateTime<Utc>) -> Self {
        HistoryEntry {
            sequence: e.sequence,
            event_type: e.event_type,
            occurred_at: Some(occurred_at),
            actor: e.metadata.actor,
            request_id: e.metadata.request_id,
            data: match serde_json::to_value(&e.event) {
                Ok(event) => keyledger_projections::read_models::redacted_details(&event),
                Err(err) => {
                    tracing::error!(error = %err, sequence = e.sequence, "an event of the history cannot be shown");
                    serde_json::Value::Null
                }
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct AuditEntry {
    /// Position in the global event log; also the pagination cursor.
    pub position: i64,
    pub tenant: String,
    pub actor: String,
    /// The event type, e.g. KeyIssued, KeyRevoked, AdminTokenIssued.
    pub action: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditRow> for AuditEntry {
    fn from(a: AuditRow) -> Self {
        AuditEntry {
            position: a.position,
            tenant: a.tenant,
            actor: a.actor,
            action: a.action,
            aggregate_type: a.aggregate_type,
            aggregate_id: a.aggregate_id,
            occurred_at: a.occurred_at,
            request_id: a.request_id,
            details: a.details,
        }
    }
}
