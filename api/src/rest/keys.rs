//! `/v1/keys`: the key lifecycle.

use super::dto::{
    self, CreateKeyBody, HistoryEntry, KeyView, ListResponse, RevokeKeyBody, RotateKeyBody, UpdateKeyBody,
};
use crate::error::ApiError;
use crate::extract::{Admin, Json, OptionalJson, Query};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use keyledger_commands::bus::{ChangeKeyRequest, IssueKeyRequest};
use keyledger_commands::CommandContext;
use keyledger_domain::key_format::Environment;
use keyledger_domain::{ApiKey, KeyStatus, Permission};
use keyledger_projections::queries::{self, KeyFilter};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

fn key_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("key"))
}

/// The key's current state rebuilt from its events (authoritative right after a command).
async fn current(state: &AppState, ctx: &CommandContext, id: Uuid) -> Result<KeyView, ApiError> {
    let events = state.bus.key_events(ctx, id).await?;
    let now = state.clock.now();
    let key = ApiKey::replay_until(events.iter().map(|e| &e.event), DateTime::<Utc>::MAX_UTC);
    key.issued()
        .map(|k| KeyView::from_state(k, now))
        .ok_or_else(|| ApiError::not_found("key"))
}

/// Issue a key. The answer's `key` is the only time the plaintext is shown.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKeyBody,
    responses((status = 201, body = KeyView), (status = 400), (status = 401), (status = 403)),
    security(("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Json(body): Json<CreateKeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let req = IssueKeyRequest {
        tenant: dto::tenant(body.tenant)?,
        name: dto::name(body.name)?,
        environment: match body.environment {
            dto::EnvironmentBody::Live => Environment::Live,
            dto::EnvironmentBody::Test => Environment::Test,
        },
        scopes: dto::scopes(body.scopes)?,
        rate_limits: dto::rate_limits(body.rate_limits.unwrap_or_default())?,
        ip_rules: dto::ip_rules(body.ip_allow, body.ip_block)?,
        expires_at: body.expires_at,
    };
    let committed = state.bus.issue_key(&ctx, req).await?;
    state.settle(committed.position).await;
    let mut view = current(&state, &ctx, committed.value.id).await?;
    view.key = Some(committed.value.secret.expose().to_owned());
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// active, expired or revoked.
    pub status: Option<String>,
    /// Include revoked keys (hidden by default).
    pub include_revoked: Option<bool>,
    /// Superusers: only this tenant (default: all tenants).
    pub tenant: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List keys, newest first.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(ListParams),
    responses((status = 200, body = ListResponse<KeyView>), (status = 400), (status = 401)),
    security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    require(&ctx, Permission::ApiManagementRead)?;
    let status = p
        .status
        .map(|s| {
            s.parse::<KeyStatus>()
                .map_err(|e| ApiError::bad_request("invalid_status", e))
        })
        .transpose()?;
    let filter = KeyFilter {
        tenant: tenant_filter(&ctx, p.tenant)?,
        status: status.map(|s| s.as_str().to_owned()),
        include_revoked: p.include_revoked.unwrap_or(false),
        limit: dto::limit(p.limit)?,
        cursor: dto::cursor(p.cursor.as_deref())?,
    };
    let page = queries::list_keys(&state.db, &filter, state.clock.now()).await?;
    Ok(axum::Json(ListResponse::<KeyView>::from(page)))
}

/// The tenant a read is limited to: the actor's own, or for superusers the one asked for (or all).
pub fn tenant_filter(ctx: &CommandContext, requested: Option<String>) -> Result<Option<String>, ApiError> {
    let requested = dto::tenant(requested)?;
    if ctx.actor.is_superuser() {
        return Ok(requested.map(|t| t.to_string()));
    }
    match requested {
        Some(t) if t != ctx.actor.tenant => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("you cannot read tenant {t}"),
        )),
        _ => Ok(Some(ctx.actor.tenant.to_string())),
    }
}

pub fn require(ctx: &CommandContext, permission: Permission) -> Result<(), ApiError> {
    if ctx.actor.has(permission) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this action needs the {permission} permission"),
        ))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// RFC 3339 instant: the key as it was then, rebuilt from its events.
    pub as_of: Option<DateTime<Utc>>,
}

/// One key (never its secret); with `as_of`, its state at that instant.
#[utoipa::path(get, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path), GetParams),
    responses((status = 200, body = KeyView), (status = 404)), security(("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    Query(p): Query<GetParams>,
) -> Result<impl IntoResponse, ApiError> {
    require(&ctx, Permission::ApiManagementRead)?;
    let id = key_id(&id)?;
    if let Some(as_of) = p.as_of {
        let events = state.bus.key_events(&ctx, id).await?;
        let key = ApiKey::replay_until(events.iter().map(|e| &e.event), as_of);
        let k = key.issued().ok_or_else(|| ApiError::not_found("key at that time"))?;
        return Ok(axum::Json(KeyView::from_state(k, as_of)));
    }
    let row = queries::get_key(&state.db, &id.to_string(), state.clock.now()).await?;
    match row {
        Some(row) if ctx.actor.is_superuser() || row.tenant == ctx.actor.tenant.as_str() => {
            Ok(axum::Json(KeyView::from(row)))
        }
        _ => Err(ApiError::not_found("key")),
    }
}

/// Change name, scopes, rate limits or IP rules of an active key.
#[utoipa::path(patch, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)), request_body = UpdateKeyBody,
    responses((status = 200, body = KeyView), (status = 400), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    Json(body): Json<UpdateKeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id = key_id(&id)?;
    let current_rules = if body.ip_allow.is_some() || body.ip_block.is_some() {
        Some(current(&state, &ctx, id).await?)
    } else {
        None
    };
    let ip_rules = match current_rules {
        Some(cur) => Some(dto::ip_rules(
            body.ip_allow.unwrap_or(cur.ip_allow),
            body.ip_block.unwrap_or(cur.ip_block),
        )?),
        None => None,
    };
    let req = ChangeKeyRequest {
        name: body.name.map(dto::name).transpose()?,
        scopes: body.scopes.map(dto::scopes).transpose()?,
        rate_limits: body.rate_limits.map(dto::rate_limits).transpose()?,
        ip_rules,
    };
    let committed = state.bus.change_key(&ctx, id, req).await?;
    state.settle(committed.position).await;
    Ok(axum::Json(current(&state, &ctx, id).await?))
}

/// Revoke a key, permanently.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "keys", params(("id" = String, Path)), request_body(content = RevokeKeyBody, description = "optional"),
    responses((status = 200, body = KeyView), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RevokeKeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id = key_id(&id)?;
    let reason = body.and_then(|b| b.reason);
    let committed = state.bus.revoke_key(&ctx, id, reason).await?;
    state.settle(committed.position).await;
    Ok(axum::Json(current(&state, &ctx, id).await?))
}

/// Rotate: a new secret (shown once); the old one keeps working for `grace_seconds`.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", params(("id" = String, Path)), request_body(content = RotateKeyBody, description = "optional"),
    responses((status = 200, body = KeyView), (status = 400), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RotateKeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id = key_id(&id)?;
    let grace = body.and_then(|b| b.grace_seconds).unwrap_or(0);
    if !(0..=7 * 86_400).contains(&grace) {
        return Err(ApiError::bad_request(
            "invalid_grace_period",
            "grace_seconds must be between 0 and 604800",
        ));
    }
    let committed = state.bus.rotate_key(&ctx, id, chrono::Duration::seconds(grace)).await?;
    state.settle(committed.position).await;
    let mut view = current(&state, &ctx, id).await?;
    view.key = Some(committed.value.secret.expose().to_owned());
    Ok(axum::Json(view))
}

/// The key's events, oldest first.
#[utoipa::path(get, path = "/v1/keys/{id}/history", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404)), security(("admin_token" = [])))]
pub async fn history(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = key_id(&id)?;
    let events = state.bus.key_events(&ctx, id).await?;
    let entries: Vec<HistoryEntry> = events
        .into_iter()
        .map(|e| HistoryEntry {
            sequence: e.sequence,
            event_type: e.event_type,
            occurred_at: Some(e.event.at()),
            actor: e.metadata.actor,
            request_id: e.metadata.request_id,
            data: keyledger_projections::read_models::redacted_details(
                &serde_json::to_value(&e.event).unwrap_or_default(),
            ),
        })
        .collect();
    Ok(axum::Json(entries))
}
