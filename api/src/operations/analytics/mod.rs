//! Usage figures for admins and analysts: the overview (seed 01's Overview tab). Usage comes
//! from the rollups, which trail the edge by at most a few hundred milliseconds (README: Usage
//! rollups); keys and endpoints from their read models.

use super::{require, tenant_filter, ApiError, ErrorCode};
use crate::state::AppState;
use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use keyledger_commands::CommandContext;
use keyledger_domain::usage::{Outcome, StatusClass, UsageFilter};
use keyledger_domain::Permission;
use keyledger_projections::usage::rollups::figures;
use serde::Serialize;
use utoipa::ToSchema;

/// The overview: the API Keys and Endpoints cards, system health over 7 days, and the 24-hour
/// request chart. Times are UTC.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct Overview {
    /// Every key, whatever its status.
    pub total_keys: i64,
    pub active_keys: i64,
    /// Requests the edge decided since 00:00 UTC today, refused ones included.
    pub requests_today: i64,
    /// Endpoints available (active, and enabled for the tenant).
    pub total_endpoints: i64,
    pub deprecated_endpoints: i64,
    pub last_7_days: Health,
    /// The last 24 hours, one point per hour (oldest first, the current hour last), zeros
    /// included.
    pub hourly_requests: Vec<HourlyPoint>,
    /// The sum of `hourly_requests`.
    pub requests_24h: i64,
}

/// System health over the last 7 × 24 hours, the current hour included.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct Health {
    pub total_requests: i64,
    /// The share of requests answered 2xx, from 0 to 1; absent without requests.
    pub success_rate: Option<f64>,
    /// Mean latency in milliseconds (README: what latency measures); absent without requests.
    pub avg_response_ms: Option<f64>,
    /// Requests refused with `rate_limited`.
    pub rate_limit_hits: i64,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct HourlyPoint {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    pub requests: i64,
}

pub async fn overview(state: &AppState, ctx: &CommandContext, tenant: Option<String>) -> Result<Overview, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let tenant = tenant_filter(ctx, tenant)?;
    let tenant = tenant.as_deref();
    let now = state.clock.now();
    state.fresh().await?;
    let keys = keyledger_projections::key_list::count_keys(&state.db, tenant, now).await?;
    let endpoints = keyledger_projections::endpoints::count_endpoints(&state.db, tenant).await?;
    let usage = figures::overview(&state.db, tenant, now).await?;
    let week = usage.last_7_days;
    let of_requests = |n: i64| (week.requests > 0).then(|| n as f64 / week.requests as f64);
    let hourly_requests: Vec<HourlyPoint> = usage
        .hourly
        .iter()
        .map(|(hour, requests)| HourlyPoint {
            hour: *hour,
            requests: *requests,
        })
        .collect();
    Ok(Overview {
        total_keys: keys.total,
        active_keys: keys.active,
        requests_today: usage.requests_today,
        total_endpoints: endpoints.total,
        deprecated_endpoints: endpoints.deprecated,
        last_7_days: Health {
            total_requests: week.requests,
            success_rate: of_requests(week.successes),
            avg_response_ms: of_requests(week.latency_sum_us).map(|us| us / 1000.0),
            rate_limit_hits: week.rate_limited,
        },
        requests_24h: hourly_requests.iter().map(|p| p.requests).sum(),
        hourly_requests,
    })
}

/// The filters every usage reader takes (analytics, streams, export), as they arrive.
#[derive(Debug, Default)]
pub struct FilterInput {
    pub key: Option<String>,
    pub endpoint: Option<String>,
    pub plugin: Option<String>,
    pub outcome: Option<String>,
    pub status_class: Option<String>,
    pub tenant: Option<String>,
}

/// Declares a usage reader's input: its own fields, then the filters every reader takes, as
/// flat query parameters (serde's `flatten` cannot refuse unknown ones).
macro_rules! with_usage_filters {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Only this key's requests.
            pub key: Option<String>,
            /// Only this endpoint's requests.
            pub endpoint: Option<String>,
            pub plugin: Option<String>,
            /// `VALID`, `INVALID_KEY`, `KEY_REVOKED`, `KEY_EXPIRED`, `IP_FORBIDDEN`,
            /// `INSUFFICIENT_SCOPE`, `RATE_LIMITED`, `ENDPOINT_NOT_FOUND` or `UPSTREAM_UNREACHABLE`.
            pub outcome: Option<String>,
            /// `2xx`, `3xx`, `4xx` or `5xx`.
            pub status_class: Option<String>,
            /// Superusers: this tenant's usage (default: every tenant's).
            pub tenant: Option<String>,
        }

        impl $name {
            /// The filters, taken out of the input.
            pub fn filters(&mut self) -> $crate::operations::analytics::FilterInput {
                $crate::operations::analytics::FilterInput {
                    key: self.key.take(),
                    endpoint: self.endpoint.take(),
                    plugin: self.plugin.take(),
                    outcome: self.outcome.take(),
                    status_class: self.status_class.take(),
                    tenant: self.tenant.take(),
                }
            }
        }
    };
}

/// The filter `ctx` may apply: a bad value is 400 `invalid_query`, another tenant 403. Everyone
/// but a superuser reads their own tenant only.
pub fn usage_filter(ctx: &CommandContext, input: FilterInput) -> Result<UsageFilter, ApiError> {
    let invalid = |e: &dyn std::fmt::Display| ApiError::new(ErrorCode::InvalidQuery, e.to_string());
    Ok(UsageFilter {
        tenant: tenant_filter(ctx, input.tenant)?,
        key_id: input.key,
        endpoint_id: input.endpoint,
        plugin: input.plugin,
        outcome: input
            .outcome
            .as_deref()
            .map(str::parse::<Outcome>)
            .transpose()
            .map_err(|e| invalid(&e))?,
        status_class: input
            .status_class
            .as_deref()
            .map(str::parse::<StatusClass>)
            .transpose()
            .map_err(|e| invalid(&e))?,
    })
}

pub mod export;
pub mod report;
pub mod stream;
