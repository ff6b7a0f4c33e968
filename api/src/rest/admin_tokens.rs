//! `/v1/admin-tokens`: the tokens admins act with.

use super::dto::{CreateTokenBody, ListResponse, TenantListParams as ListParams, TokenView};
use crate::error::ApiError;
use crate::extract::{Admin, Json, Path, Query};
use crate::operations;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// Create an admin token. The answer's `token` is the only time it is shown.
#[utoipa::path(post, path = "/v1/admin-tokens", tag = "admin tokens", request_body = CreateTokenBody,
    responses((status = 201, body = TokenView), (status = 400), (status = 403), (status = 409, description = "token_already_exists")),
    security(("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Json(body): Json<CreateTokenBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(operations::create_token(&state, &ctx, body).await?),
    ))
}

/// Live tokens: name, created, expiry status, last used.
#[utoipa::path(get, path = "/v1/admin-tokens", tag = "admin tokens", params(ListParams),
    responses((status = 200, body = ListResponse<TokenView>), (status = 403)), security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(
        operations::list_tokens(&state, &ctx, p.tenant, p.limit, p.cursor).await?,
    ))
}

/// Delete a token; it stops working at once.
#[utoipa::path(delete, path = "/v1/admin-tokens/{id}", tag = "admin tokens", params(("id" = String, Path)),
    responses((status = 204), (status = 404)), security(("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    operations::delete_token(&state, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
