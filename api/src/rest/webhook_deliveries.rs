//! `/v1/webhooks/deliveries…`, `/v1/webhooks/stats` and `/v1/webhooks/{id}/recover`: what
//! happened to each delivery, sending again, and figures.

use super::delivery_dto::*;
use super::dto::ListResponse;
use crate::error::ApiError;
use crate::extract::{Admin, Path, Query};
use crate::operations::webhook_deliveries as ops;
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;

/// Deliveries, newest first, filtered by subscription, status and event type.
#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "webhooks", params(DeliveryListParams),
    responses((status = 200, body = ListResponse<DeliveryView>), (status = 400), (status = 403), (status = 404)),
    security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<DeliveryListParams>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ops::list_deliveries(&state, &ctx, p).await?))
}

/// One delivery with every attempt: status code, error, body sent, answer (first 4 KiB),
/// duration, time and when the next was due.
#[utoipa::path(get, path = "/v1/webhooks/deliveries/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = DeliveryView), (status = 404)), security(("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ops::get_delivery(&state, &ctx, &id).await?))
}

/// Send a delivered or failed delivery again now, under the same `webhook-id`.
#[utoipa::path(post, path = "/v1/webhooks/deliveries/{id}/resend", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202, body = DeliveryView), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn resend(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(ops::resend(&state, &ctx, &id).await?),
    ))
}

/// Send again every failed delivery of the subscription made since `since`.
#[utoipa::path(post, path = "/v1/webhooks/{id}/recover", tag = "webhooks",
    params(("id" = String, Path), RecoverParams),
    responses((status = 202, body = RecoveredView), (status = 400), (status = 404), (status = 409)),
    security(("admin_token" = [])))]
pub async fn recover(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    Query(p): Query<RecoverParams>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(ops::recover(&state, &ctx, &id, &p.since).await?),
    ))
}

/// Deliveries, success rate and attempt durations (average, P95) over 24 hours, 7 and 30 days.
#[utoipa::path(get, path = "/v1/webhooks/stats", tag = "webhooks", params(StatsParams),
    responses((status = 200, body = StatsView), (status = 400), (status = 403), (status = 404)),
    security(("admin_token" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<StatsParams>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ops::stats(&state, &ctx, p).await?))
}
