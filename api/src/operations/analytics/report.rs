//! `GET /v1/analytics`: a range's figures, filtered, from the rollups.

use super::super::{require, ApiError, ErrorCode};
use super::stream::UsageRecordView;
use crate::state::AppState;
use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use keyledger_commands::CommandContext;
use keyledger_domain::usage::{Figures, Percentiles, Period, Range};
use keyledger_domain::Permission;
use keyledger_projections::usage::rollups::figures;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// At most this many endpoints and keys in the rankings.
const TOP: usize = 10;
/// Errors listed as the most recent.
const RECENT_ERRORS: i64 = 10;

with_usage_filters! {
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsInput {
    /// `24h` (default), `7d`, `30d` or `90d`.
    pub range: Option<String>,
    /// `hour` or `day` (default: hour for 24h, day otherwise); `minute` for 24h.
    pub period: Option<String>,

}
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "AnalyticsReport")]
pub struct AnalyticsReport {
    pub range: String,
    pub period: String,
    pub total_requests: i64,
    /// The share of 2xx answers, 0 to 1; absent without requests.
    pub success_rate: Option<f64>,
    pub avg_latency_ms: Option<f64>,
    /// Requests answered 4xx or 5xx.
    pub error_count: i64,
    pub latency: LatencyPercentiles,
    /// Requests per period, every period of the range (zeros included), oldest first.
    pub volume: Vec<VolumePoint>,
    pub by_plugin: Vec<NamedCount>,
    /// Per edge outcome (`VALID`, `RATE_LIMITED`, …).
    pub by_outcome: Vec<NamedCount>,
    /// The error count of the range before this one, of the same length.
    pub previous_error_count: i64,
    /// `error_count` against `previous_error_count`: 0.5 is half as many again, -1 none left;
    /// absent when there were none before.
    pub error_change: Option<f64>,
    /// Per error status code, now and in the range before: every code either had.
    pub errors_by_status: Vec<StatusCount>,
    /// The latest errors (4xx and 5xx) of the range, newest first, at most ten (kept: each
    /// tenant's newest 1 000, within the raw records' retention).
    pub recent_errors: Vec<UsageRecordView>,
    /// The busiest endpoints, most requests first.
    pub top_endpoints: Vec<EndpointUsage>,
    /// The busiest keys, most requests first.
    pub by_key: Vec<KeyUsage>,
    /// Why there is nothing to show, when there is nothing.
    pub empty_reason: Option<String>,
}

/// Within 1 % (the rollups' sketch, README: Usage rollups).
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct LatencyPercentiles {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl From<Percentiles> for LatencyPercentiles {
    fn from(p: Percentiles) -> Self {
        LatencyPercentiles {
            p50_ms: p.p50_ms,
            p95_ms: p.p95_ms,
            p99_ms: p.p99_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct VolumePoint {
    pub start: DateTime<Utc>,
    pub requests: i64,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct NamedCount {
    pub name: String,
    pub requests: i64,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct StatusCount {
    pub status: i32,
    pub requests: i64,
    /// In the range before.
    pub previous_requests: i64,
    /// As `error_change`, for this code.
    pub change: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct EndpointUsage {
    pub endpoint_id: String,
    pub methods: Vec<String>,
    pub path: Option<String>,
    pub plugin: String,
    pub requests: i64,
    pub avg_latency_ms: Option<f64>,
    pub error_rate: Option<f64>,
    /// `green` under 1 %, `amber` 1–5 %, `red` above.
    pub error_class: String,
    pub latency: LatencyPercentiles,
}

#[derive(Debug, Serialize, ToSchema, SimpleObject)]
pub struct KeyUsage {
    pub key_id: String,
    pub name: Option<String>,
    pub requests: i64,
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, e.to_string())
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn endpoint_usage(
    state: &AppState,
    ctx: &CommandContext,
    id: String,
    plugin: String,
    f: &Figures,
) -> EndpointUsage {
    let row = keyledger_projections::endpoints::get_endpoint(&state.db, &id, ctx.actor.tenant.as_str())
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, endpoint = id, "an endpoint of the analytics could not be read");
            None
        });
    EndpointUsage {
        methods: row.as_ref().map(|r| r.methods.clone()).unwrap_or_default(),
        path: row.map(|r| r.path),
        endpoint_id: id,
        plugin,
        requests: count(f.requests()),
        avg_latency_ms: f.avg_latency_ms(),
        error_rate: f.error_rate(),
        error_class: f.error_class().as_str().to_owned(),
        latency: f.percentiles().into(),
    }
}

pub async fn analytics(
    state: &AppState,
    ctx: &CommandContext,
    mut input: AnalyticsInput,
) -> Result<AnalyticsReport, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let range: Range = input.range.as_deref().unwrap_or("24h").parse().map_err(invalid)?;
    let period: Period = match input.period.as_deref() {
        Some(p) => p.parse().map_err(invalid)?,
        None => range.default_period(),
    };
    let now = state.clock.now();
    let buckets = range.buckets(period, now).map_err(invalid)?;
    let filter = super::usage_filter(ctx, input.filters())?;
    let from = buckets.first().copied().unwrap_or(now);
    let until = period.bucket(now) + period.width();
    let scope = figures::Scope::new(&state.db, period, filter.clone()).await?;
    let report = figures::report(&state.db, &scope, &buckets, until, TOP).await?;
    let before = range.buckets(period, now - range.length()).map_err(invalid)?;
    let previous_from = before.first().copied().unwrap_or(from);
    let previous = figures::totals_of(&state.db, &scope, (previous_from, from)).await?;
    let trend = report.error_trend(&previous);
    let recent_errors = keyledger_projections::usage::errors::recent(&state.db, &filter, from, RECENT_ERRORS)
        .await?
        .iter()
        .map(UsageRecordView::from)
        .collect();
    let empty_reason = if report.overall.requests() > 0 {
        None
    } else if !figures::any_usage(&state.db, filter.tenant.as_deref()).await? {
        Some("No analytics data available: no requests have been recorded yet".to_owned())
    } else if filter.narrows() {
        Some("No analytics data available: the filters exclude every request in this range".to_owned())
    } else {
        Some(format!("No analytics data available: no requests in the last {range}"))
    };
    let mut top_endpoints = Vec::new();
    for (id, plugin, f) in report.endpoints.iter().take(TOP) {
        top_endpoints.push(endpoint_usage(state, ctx, id.clone(), plugin.clone(), f).await);
    }
    let mut by_key = Vec::new();
    for (key_id, n) in report.keys.iter().take(TOP) {
        let name = keyledger_projections::key_list::get_key(&state.db, key_id, now)
            .await?
            .map(|row| row.key.name.to_string());
        by_key.push(KeyUsage {
            key_id: key_id.clone(),
            name,
            requests: count(*n),
        });
    }
    Ok(AnalyticsReport {
        range: range.to_string(),
        period: period.to_string(),
        total_requests: count(report.overall.requests()),
        success_rate: report.success_rate(),
        avg_latency_ms: report.overall.avg_latency_ms(),
        error_count: count(report.overall.errors),
        previous_error_count: count(trend.previous),
        error_change: trend.change,
        latency: report.overall.percentiles().into(),
        volume: report
            .volume
            .iter()
            .map(|(start, n)| VolumePoint {
                start: *start,
                requests: count(*n),
            })
            .collect(),
        by_plugin: report
            .by_plugin
            .iter()
            .map(|(name, n)| NamedCount {
                name: name.clone(),
                requests: count(*n),
            })
            .collect(),
        by_outcome: report
            .by_outcome
            .iter()
            .map(|(o, n)| NamedCount {
                name: o.verdict().to_owned(),
                requests: count(*n),
            })
            .collect(),
        errors_by_status: trend
            .by_status
            .iter()
            .map(|t| StatusCount {
                status: i32::from(t.status),
                requests: count(t.requests),
                previous_requests: count(t.previous),
                change: t.change,
            })
            .collect(),
        recent_errors,
        top_endpoints,
        by_key,
        empty_reason,
    })
}
