//! `/v1/audit`: every event, newest first.

use super::dto::{self, AuditEntry, ListResponse};
use super::keys::{require, tenant_filter};
use crate::error::ApiError;
use crate::extract::{Admin, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use keyledger_domain::Permission;
use keyledger_projections::queries::{self, AuditFilter};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Who acted: `admin_token:<id>` or `system`.
    pub actor: Option<String>,
    /// Event type(s), comma-separated: `KeyIssued,KeyRevoked`.
    pub action: Option<String>,
    /// RFC 3339: only events at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Superusers: only this tenant (default: all).
    pub tenant: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = ListResponse<AuditEntry>), (status = 400)), security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<AuditParams>,
) -> Result<impl IntoResponse, ApiError> {
    require(&ctx, Permission::ApiManagementRead)?;
    let actions = p
        .action
        .map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let filter = AuditFilter {
        tenant: tenant_filter(&ctx, p.tenant)?,
        actor: p.actor.filter(|a| !a.is_empty()),
        actions,
        since: p.since,
        limit: dto::limit(p.limit)?,
        cursor: dto::cursor(p.cursor.as_deref())?,
    };
    let page = queries::list_audit(&state.db, &filter).await?;
    Ok(axum::Json(ListResponse::<AuditEntry>::from(page)))
}
