//! What the admin API does, shared by REST and GraphQL: parse the input into domain types, run the
//! command or query, and shape the answer. Transports only translate.

use crate::error::{ApiError, ErrorCode};
use crate::rest::dto::{
    self, AuditEntry, CreateKeyBody, CreateTokenBody, HistoryEntry, KeyView, ListResponse, TokenView, UpdateKeyBody,
};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use keyledger_commands::bus::{ChangeKeyRequest, IssueKeyRequest, IssueOutcome, IssueTokenRequest};
use keyledger_commands::CommandContext;
use keyledger_domain::api_key::IssuedKey;
use keyledger_domain::key_format::Environment;
use keyledger_domain::{ApiKey, KeyStatus, Permission, TenantId};
use keyledger_projections::audit::AuditFilter;
use keyledger_projections::key_list::KeyFilter;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

pub fn require(ctx: &CommandContext, permission: Permission) -> Result<(), ApiError> {
    if ctx.actor.has(permission) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this action needs the {permission} permission"),
        ))
    }
}

/// The tenant a read is limited to: the actor's own, or for superusers the one asked for (or all).
pub fn tenant_filter(ctx: &CommandContext, requested: Option<String>) -> Result<Option<String>, ApiError> {
    let requested = dto::tenant(requested)?;
    if ctx.actor.is_superuser() {
        return Ok(requested.map(|t| t.to_string()));
    }
    match requested {
        Some(t) if t != ctx.actor.tenant => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("you cannot read tenant {t}"),
        )),
        _ => Ok(Some(ctx.actor.tenant.to_string())),
    }
}

/// A list request of a tenant's things, checked: the tenant it may read and the page.
pub(crate) struct Listing {
    pub tenant: Option<String>,
    pub limit: i64,
    pub cursor: Option<i64>,
}

/// Checks a list request (the permission, the tenant, the page), then waits for the read models
/// to hold the caller's own writes.
pub(crate) async fn listing(
    state: &AppState,
    ctx: &CommandContext,
    permission: Permission,
    tenant: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<Listing, ApiError> {
    require(ctx, permission)?;
    let listing = Listing {
        tenant: tenant_filter(ctx, tenant)?,
        limit: dto::limit(limit)?,
        cursor: dto::cursor(cursor.as_deref())?,
    };
    state.fresh().await?;
    Ok(listing)
}

fn key_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("key"))
}

/// The answer for a key as a command left it, with its usage (not an event: read from where GET
/// and the list take it).
async fn answer(state: &AppState, key: &IssuedKey) -> Result<KeyView, ApiError> {
    let (last_used_at, requests) = state.key_usage.get(key.id.to_string()).await?;
    Ok(KeyView::of(key, state.clock.now(), last_used_at, requests))
}

// ---------------- keys ----------------

/// Header values and GraphQL arguments accepted as idempotency keys.
pub fn idempotency_key(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw {
        None => Ok(None),
        Some(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(k.to_owned())),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// A created key (with its plaintext) or, for a retried idempotent create, the key the first
/// attempt made (`replayed`, without plaintext: it is never stored).
pub struct CreatedKey {
    pub view: KeyView,
    pub replayed: bool,
}

pub async fn create_key(
    state: &AppState,
    ctx: &CommandContext,
    body: CreateKeyBody,
    idempotency_key: Option<String>,
) -> Result<CreatedKey, ApiError> {
    let req = IssueKeyRequest {
        idempotency_key,
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
    let committed = state.bus.issue_key(ctx, req).await?;
    state.settle_edge(committed.position).await;
    let mut view = answer(state, committed.value.key()).await?;
    match committed.value {
        IssueOutcome::Created { secret, .. } => {
            view.key = Some(secret.expose().to_owned());
            Ok(CreatedKey { view, replayed: false })
        }
        IssueOutcome::Replayed(_) => Ok(CreatedKey { view, replayed: true }),
    }
}

/// Filters of the key list (REST query string, GraphQL arguments).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeyListInput {
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

pub async fn list_keys(
    state: &AppState,
    ctx: &CommandContext,
    p: KeyListInput,
) -> Result<ListResponse<KeyView>, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let status = p
        .status
        .map(|s| {
            s.parse::<KeyStatus>()
                .map_err(|e| ApiError::new(ErrorCode::InvalidStatus, e.to_string()))
        })
        .transpose()?;
    let filter = KeyFilter {
        tenant: tenant_filter(ctx, p.tenant)?,
        status: status.map(|s| s.as_str().to_owned()),
        include_revoked: p.include_revoked.unwrap_or(false),
        limit: dto::limit(p.limit)?,
        cursor: dto::cursor(p.cursor.as_deref())?,
    };
    state.fresh().await?;
    let page = keyledger_projections::key_list::list_keys(&state.db, &filter, state.clock.now()).await?;
    let now = state.clock.now();
    Ok(ListResponse {
        data: page.data.iter().map(|row| KeyView::from_row(row, now)).collect(),
        next_cursor: page.next_cursor,
    })
}

/// One key from the read model; with `as_of`, rebuilt from its events as it was then.
pub async fn get_key(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<KeyView, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let id = key_id(id)?;
    if let Some(as_of) = as_of {
        let events = state.bus.key_events(ctx, id).await?;
        let key = ApiKey::replay_until(events.iter().map(|e| &e.event), as_of);
        let k = key.issued().ok_or_else(|| ApiError::not_found("key at that time"))?;
        return Ok(KeyView::of(k, as_of, None, 0));
    }
    state.fresh().await?;
    let now = state.clock.now();
    match keyledger_projections::key_list::get_key(&state.db, &id.to_string(), now).await? {
        Some(row) if ctx.actor.may_access(&row.key.tenant) => Ok(KeyView::from_row(&row, now)),
        _ => Err(ApiError::not_found("key")),
    }
}

pub async fn update_key(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    body: UpdateKeyBody,
) -> Result<KeyView, ApiError> {
    let id = key_id(id)?;
    let req = ChangeKeyRequest {
        name: body.name.map(dto::name).transpose()?,
        scopes: body.scopes.map(dto::scopes).transpose()?,
        rate_limits: body.rate_limits.map(dto::rate_limits).transpose()?,
        ip_allow: body.ip_allow.map(dto::cidr_rules).transpose()?,
        ip_block: body.ip_block.map(dto::cidr_rules).transpose()?,
    };
    let committed = state.bus.change_key(ctx, id, req).await?;
    state.settle_edge(committed.position).await;
    answer(state, &committed.value).await
}

pub async fn revoke_key(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    reason: Option<String>,
) -> Result<KeyView, ApiError> {
    let id = key_id(id)?;
    let committed = state.bus.revoke_key(ctx, id, reason).await?;
    state.settle_edge(committed.position).await;
    answer(state, &committed.value).await
}

pub async fn rotate_key(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    grace_seconds: Option<i64>,
) -> Result<KeyView, ApiError> {
    let id = key_id(id)?;
    let grace = grace_seconds.unwrap_or(0);
    if !(0..=7 * 86_400).contains(&grace) {
        return Err(ApiError::new(
            ErrorCode::InvalidGracePeriod,
            "grace_seconds must be between 0 and 604800",
        ));
    }
    let committed = state.bus.rotate_key(ctx, id, chrono::Duration::seconds(grace)).await?;
    state.settle_edge(committed.position).await;
    let (key, secret) = committed.value;
    let mut view = answer(state, &key).await?;
    view.key = Some(secret.expose().to_owned());
    Ok(view)
}

pub async fn key_history(state: &AppState, ctx: &CommandContext, id: &str) -> Result<Vec<HistoryEntry>, ApiError> {
    let id = key_id(id)?;
    let events = state.bus.key_events(ctx, id).await?;
    Ok(events
        .into_iter()
        .map(|e| {
            let at = e.event.at();
            HistoryEntry::from_stored(e, at)
        })
        .collect())
}

// ---------------- admin tokens ----------------

pub async fn create_token(
    state: &AppState,
    ctx: &CommandContext,
    body: CreateTokenBody,
) -> Result<TokenView, ApiError> {
    let req = IssueTokenRequest {
        tenant: dto::tenant(body.tenant)?,
        name: dto::name(body.name)?,
        permissions: dto::permissions(body.permissions)?,
        scopes: body.scopes.map(dto::scopes).transpose()?,
        expires_at: body.expires_at,
    };
    let committed = state.bus.issue_admin_token(ctx, req).await?;
    state.settle(committed.position).await;
    let row = keyledger_projections::admin_tokens::get_token(&state.db, &committed.value.id.to_string())
        .await?
        .ok_or_else(|| ApiError::internal("token not in the read model after catch-up"))?;
    let mut view = TokenView::from_row(row, state.clock.now());
    view.token = Some(committed.value.secret);
    Ok(view)
}

pub async fn list_tokens(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<ListResponse<TokenView>, ApiError> {
    let l = listing(state, ctx, Permission::TenantAdmin, tenant, limit, cursor).await?;
    let page =
        keyledger_projections::admin_tokens::list_tokens(&state.db, l.tenant.as_deref(), l.limit, l.cursor).await?;
    let now = state.clock.now();
    Ok(ListResponse {
        data: page.data.into_iter().map(|t| TokenView::from_row(t, now)).collect(),
        next_cursor: page.next_cursor,
    })
}

pub async fn delete_token(state: &AppState, ctx: &CommandContext, id: &str) -> Result<(), ApiError> {
    require(ctx, Permission::TenantAdmin)?;
    let token_id = Uuid::parse_str(id).map_err(|_| ApiError::not_found("admin token"))?;
    state.fresh().await?;
    let row = match keyledger_projections::admin_tokens::get_token(&state.db, &token_id.to_string()).await? {
        Some(r) if !r.deleted && (ctx.actor.is_superuser() || r.tenant == ctx.actor.tenant.as_str()) => r,
        _ => return Err(ApiError::not_found("admin token")),
    };
    let tenant = TenantId::try_from(row.tenant).map_err(ApiError::internal)?;
    let name = dto::name(row.name)?;
    let committed = state.bus.delete_admin_token(ctx, token_id, &tenant, &name).await?;
    state.settle(committed.position).await;
    Ok(())
}

// ---------------- audit ----------------

/// Filters of the audit log (REST query string, GraphQL arguments).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditInput {
    /// Who acted: `admin_token:<id>` or `system`.
    pub actor: Option<String>,
    /// Event type(s), comma-separated: `KeyIssued,KeyRevoked`.
    pub action: Option<String>,
    /// RFC 3339: only events at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Superusers: only this tenant (default: all).
    pub tenant: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub async fn list_audit(
    state: &AppState,
    ctx: &CommandContext,
    p: AuditInput,
) -> Result<ListResponse<AuditEntry>, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
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
        tenant: tenant_filter(ctx, p.tenant)?,
        actor: p.actor.filter(|a| !a.is_empty()),
        actions,
        since: p.since,
        limit: dto::limit(p.limit)?,
        cursor: dto::cursor(p.cursor.as_deref())?,
    };
    state.fresh().await?;
    Ok(ListResponse::from(
        keyledger_projections::audit::list_audit(&state.db, &filter).await?,
    ))
}

pub mod alert_rules;
pub mod analytics;
pub mod endpoints;
pub mod import;
pub mod tryout;
pub mod webhook_deliveries;
pub mod webhook_subscriptions;
pub mod webhooks;
