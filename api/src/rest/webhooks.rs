//! `/v1/webhook-templates`: what a tenant's webhook deliveries look like.

use super::dto::{ListResponse, TenantListParams as ListParams};
use super::webhook_dto::*;
use crate::error::ApiError;
use crate::extract::{Admin, Json, OptionalJson, Path, Query};
use crate::operations::webhooks as ops;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// Create a template. A custom template that does not compile is refused with its line and the
/// reason (`invalid_template`).
#[utoipa::path(post, path = "/v1/webhook-templates", tag = "webhooks", request_body = CreateTemplateBody,
    responses((status = 201, body = TemplateView), (status = 400), (status = 403)),
    security(("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Json(body): Json<CreateTemplateBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(ops::create_template(&state, &ctx, body).await?),
    ))
}

/// The tenant's templates, newest first.
#[utoipa::path(get, path = "/v1/webhook-templates", tag = "webhooks", params(ListParams),
    responses((status = 200, body = ListResponse<TemplateView>), (status = 403)), security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        ops::list_templates(&state, &ctx, p.tenant, p.limit, p.cursor).await?,
    ))
}

#[utoipa::path(get, path = "/v1/webhook-templates/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = TemplateView), (status = 404)), security(("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ops::get_template(&state, &ctx, &id).await?))
}

/// Rename a template, or change a custom template's text.
#[utoipa::path(patch, path = "/v1/webhook-templates/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = UpdateTemplateBody,
    responses((status = 200, body = TemplateView), (status = 400), (status = 404)), security(("admin_token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    Json(body): Json<UpdateTemplateBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ops::update_template(&state, &ctx, &id, body).await?))
}

#[utoipa::path(delete, path = "/v1/webhook-templates/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404)), security(("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    ops::delete_template(&state, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Render a sample event through the template: the exact body a delivery would carry, its
/// content type, and every platform limit it breaks.
#[utoipa::path(post, path = "/v1/webhook-templates/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    request_body(content = TestTemplateBody, description = "optional"),
    responses((status = 200, body = TemplateTestView), (status = 400), (status = 404)), security(("admin_token" = [])))]
pub async fn test(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<TestTemplateBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        ops::test_template(&state, &ctx, &id, body.unwrap_or_default()).await?,
    ))
}

/// Render a sample event through a template that is not saved (nothing is stored): what
/// `…/{id}/test` answers once it is. The console's live preview.
#[utoipa::path(post, path = "/v1/webhook-templates/preview", tag = "webhooks",
    request_body = PreviewTemplateBody,
    responses((status = 200, body = TemplateTestView), (status = 400)), security(("admin_token" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Json(body): Json<PreviewTemplateBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ops::preview_template(&state, &ctx, body)?))
}
