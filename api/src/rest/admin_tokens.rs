//! `/v1/admin-tokens`: the tokens admins act with.

use super::dto::{self, CreateTokenBody, ListResponse, TokenView};
use super::keys::{require, tenant_filter};
use crate::error::ApiError;
use crate::extract::{Admin, Json, Query};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use keyledger_commands::bus::IssueTokenRequest;
use keyledger_domain::{Permission, TenantId};
use keyledger_projections::queries;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// Create an admin token. The answer's `token` is the only time it is shown.
#[utoipa::path(post, path = "/v1/admin-tokens", tag = "admin tokens", request_body = CreateTokenBody,
    responses((status = 201, body = TokenView), (status = 400), (status = 403), (status = 409, description = "token_already_exists")),
    security(("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Json(body): Json<CreateTokenBody>,
) -> Result<impl IntoResponse, ApiError> {
    let req = IssueTokenRequest {
        tenant: dto::tenant(body.tenant)?,
        name: dto::name(body.name)?,
        permissions: dto::permissions(body.permissions)?,
        scopes: body.scopes.map(dto::scopes).transpose()?,
        expires_at: body.expires_at,
    };
    let committed = state.bus.issue_admin_token(&ctx, req).await?;
    state.settle(committed.position).await;
    let row = queries::get_token(&state.db, &committed.value.id.to_string())
        .await?
        .ok_or_else(|| ApiError::internal("token not in the read model after catch-up"))?;
    let mut view = TokenView::from_row(row, state.clock.now());
    view.token = Some(committed.value.secret);
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub tenant: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Live tokens: name, created, expiry status, last used.
#[utoipa::path(get, path = "/v1/admin-tokens", tag = "admin tokens", params(ListParams),
    responses((status = 200, body = ListResponse<TokenView>), (status = 403)), security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    require(&ctx, Permission::TenantAdmin)?;
    let tenant = tenant_filter(&ctx, p.tenant)?;
    let page = queries::list_tokens(
        &state.db,
        tenant.as_deref(),
        dto::limit(p.limit)?,
        dto::cursor(p.cursor.as_deref())?,
    )
    .await?;
    let now = state.clock.now();
    Ok(axum::Json(ListResponse {
        data: page.data.into_iter().map(|t| TokenView::from_row(t, now)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Delete a token; it stops working at once.
#[utoipa::path(delete, path = "/v1/admin-tokens/{id}", tag = "admin tokens", params(("id" = String, Path)),
    responses((status = 204), (status = 404)), security(("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    require(&ctx, Permission::TenantAdmin)?;
    let token_id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("admin token"))?;
    let row = queries::get_token(&state.db, &token_id.to_string()).await?;
    let row = match row {
        Some(r) if !r.deleted && (ctx.actor.is_superuser() || r.tenant == ctx.actor.tenant.as_str()) => r,
        _ => return Err(ApiError::not_found("admin token")),
    };
    let tenant = TenantId::try_from(row.tenant).map_err(ApiError::internal)?;
    let name = dto::name(row.name)?;
    let committed = state.bus.delete_admin_token(&ctx, token_id, &tenant, &name).await?;
    state.settle(committed.position).await;
    Ok(StatusCode::NO_CONTENT)
}
