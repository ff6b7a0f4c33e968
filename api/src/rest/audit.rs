//! `/v1/audit`: every event, newest first.

use super::dto::{AuditEntry, ListResponse};
use crate::error::ApiError;
use crate::extract::{Admin, Query};
use crate::operations::{self, AuditInput};
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditInput),
    responses((status = 200, body = ListResponse<AuditEntry>), (status = 400)), security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(input): Query<AuditInput>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(operations::list_audit(&state, &ctx, input).await?))
}
