//! `/v1/keys`: the key lifecycle.

use super::dto::{CreateKeyBody, HistoryEntry, KeyView, ListResponse, RevokeKeyBody, RotateKeyBody, UpdateKeyBody};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Admin, Json, OptionalJson, Path, Query};
use crate::operations::{self, KeyListInput};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

/// Issue a key. The answer's `key` is the only time the plaintext is shown.
///
/// With an `Idempotency-Key` header a retry never creates a second key: it answers 200 with the
/// key the first attempt made, `Idempotent-Replayed: true` and no `key` (the plaintext is never
/// stored; rotate if it was lost).
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKeyBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters")),
    responses((status = 201, body = KeyView), (status = 200, body = KeyView, description = "idempotent replay"),
        (status = 400), (status = 401), (status = 403)),
    security(("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    headers: HeaderMap,
    Json(body): Json<CreateKeyBody>,
) -> Result<Response, ApiError> {
    let idem = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::new(ErrorCode::InvalidIdempotencyKey, "not ASCII"))
        })
        .transpose()?;
    let idem = operations::idempotency_key(idem)?;
    let created = operations::create_key(&state, &ctx, body, idem).await?;
    Ok(if created.replayed {
        (
            StatusCode::OK,
            [("idempotent-replayed", "true")],
            axum::Json(created.view),
        )
            .into_response()
    } else {
        (StatusCode::CREATED, axum::Json(created.view)).into_response()
    })
}

/// List keys, newest first.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(KeyListInput),
    responses((status = 200, body = ListResponse<KeyView>), (status = 400), (status = 401)),
    security(("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(input): Query<KeyListInput>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(operations::list_keys(&state, &ctx, input).await?))
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
    Ok(axum::Json(operations::get_key(&state, &ctx, &id, p.as_of).await?))
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
    Ok(axum::Json(operations::update_key(&state, &ctx, &id, body).await?))
}

/// Revoke a key, permanently.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "keys", params(("id" = String, Path)),
    request_body(content = RevokeKeyBody, description = "optional"),
    responses((status = 200, body = KeyView), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RevokeKeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let reason = body.and_then(|b| b.reason);
    Ok(axum::Json(operations::revoke_key(&state, &ctx, &id, reason).await?))
}

/// Rotate: a new secret (shown once); the old one keeps working for `grace_seconds`.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", params(("id" = String, Path)),
    request_body(content = RotateKeyBody, description = "optional"),
    responses((status = 200, body = KeyView), (status = 400), (status = 404), (status = 409)), security(("admin_token" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RotateKeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let grace = body.and_then(|b| b.grace_seconds);
    Ok(axum::Json(operations::rotate_key(&state, &ctx, &id, grace).await?))
}

/// The key's events, oldest first.
#[utoipa::path(get, path = "/v1/keys/{id}/history", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404)), security(("admin_token" = [])))]
pub async fn history(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(operations::key_history(&state, &ctx, &id).await?))
}
