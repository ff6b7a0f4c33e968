//! `/v1/overview` and `/v1/analytics`: the usage dashboard's figures.

use super::endpoints::TenantParam;
use crate::error::ApiError;
use crate::extract::{Admin, Query};
use crate::operations::analytics::report::{self, AnalyticsInput, AnalyticsReport};
use crate::operations::analytics::{self, Overview};
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;

/// Keys, endpoints and usage at a glance: the Overview tab.
#[utoipa::path(get, path = "/v1/overview", tag = "analytics", params(TenantParam),
    responses((status = 200, body = Overview)), security(("admin_token" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<TenantParam>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(analytics::overview(&state, &ctx, p.tenant).await?))
}

/// A range's usage, filtered: totals, volume, breakdowns, rankings and latency percentiles.
#[utoipa::path(get, path = "/v1/analytics", tag = "analytics", params(AnalyticsInput),
    responses((status = 200, body = AnalyticsReport)), security(("admin_token" = [])))]
pub async fn analytics(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(input): Query<AnalyticsInput>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(report::analytics(&state, &ctx, input).await?))
}
