//! `/v1/alert-rules`: usage alerts, delivered by webhooks as `usage.alert`.

use super::alert_dto::*;
use super::dto::{ListResponse, TenantListParams as ListParams};
use crate::error::ApiError;
use crate::extract::{Admin, Json, Path, Query};
use crate::operations::alert_rules as ops;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// A rule: a key's, an endpoint's or the tenant's requests, error rate or rate-limit hits over a
/// window above a threshold (or a key nearing expiry) fires a `usage.alert` once per breach.
#[utoipa::path(post, path = "/v1/alert-rules", tag = "webhooks", request_body = CreateAlertRuleBody,
    responses((status = 201, body = AlertRuleView), (status = 400), (status = 403)),
    security(("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Json(body): Json<CreateAlertRuleBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(ops::create_rule(&state, &ctx, body).await?),
    ))
}

/// The tenant's alert rules, newest first, with whether each is in breach.
#[utoipa::path(get, path = "/v1/alert-rules", tag = "webhooks", params(ListParams),
    responses((status = 200, body = ListResponse<AlertRuleView>), (status = 403)), security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        ops::list_rules(&state, &ctx, p.tenant, p.limit, p.cursor).await?,
    ))
}

#[utoipa::path(get, path = "/v1/alert-rules/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = AlertRuleView), (status = 404)), security(("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ops::get_rule(&state, &ctx, &id).await?))
}

#[utoipa::path(delete, path = "/v1/alert-rules/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404)), security(("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    ops::delete_rule(&state, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
