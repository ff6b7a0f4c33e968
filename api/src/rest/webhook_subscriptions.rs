//! `/v1/webhooks`: where a tenant's events are delivered.

use super::dto::{ListResponse, TenantListParams as ListParams};
use super::webhook_dto::*;
use crate::error::ApiError;
use crate::extract::{Admin, Json, OptionalJson, Path, Query};
use crate::operations::webhook_subscriptions::{self as ops, StatusAction};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// Subscribe a URL to event types. The answer's `secret` (`whsec_…`) signs every delivery
/// (Standard Webhooks) and is shown this once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhookBody,
    responses((status = 201, body = WebhookView), (status = 400), (status = 403)),
    security(("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Json(body): Json<CreateWebhookBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(ops::create_webhook(&state, &ctx, body).await?),
    ))
}

/// The tenant's subscriptions, newest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(ListParams),
    responses((status = 200, body = ListResponse<WebhookView>), (status = 403)), security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        ops::list_webhooks(&state, &ctx, p.tenant, p.limit, p.cursor).await?,
    ))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404)), security(("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ops::get_webhook(&state, &ctx, &id).await?))
}

/// Change the URL, event types, template, headers or description.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = UpdateWebhookBody,
    responses((status = 200, body = WebhookView), (status = 400), (status = 404)), security(("admin_token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    Json(body): Json<UpdateWebhookBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ops::update_webhook(&state, &ctx, &id, body).await?))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404)), security(("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    ops::delete_webhook(&state, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop deliveries until resumed.
#[utoipa::path(post, path = "/v1/webhooks/{id}/pause", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        ops::set_status(&state, &ctx, &id, StatusAction::Pause).await?,
    ))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/resume", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        ops::set_status(&state, &ctx, &id, StatusAction::Resume).await?,
    ))
}

/// Deliver again to a subscription that was disabled (after persistent failure, or a 410).
#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        ops::set_status(&state, &ctx, &id, StatusAction::Enable).await?,
    ))
}

/// A new signing secret, shown once; the previous one keeps signing beside it for
/// `grace_seconds` (24 h by default), both signatures in the header.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    request_body(content = RotateSecretBody, description = "optional"),
    responses((status = 200, body = WebhookView), (status = 400), (status = 404)), security(("admin_token" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RotateSecretBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        ops::rotate_secret(&state, &ctx, &id, body.unwrap_or_default()).await?,
    ))
}
