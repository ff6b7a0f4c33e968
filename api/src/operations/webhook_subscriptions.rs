//! Webhook subscriptions: create (the signing secret shown once), read, change, pause, resume,
//! enable, rotate the secret, delete.

use super::require;
use crate::error::{ApiError, ErrorCode};
use crate::rest::dto::ListResponse;
use crate::rest::webhook_dto::*;
use crate::state::AppState;
use async_graphql::MaybeUndefined;
use axum::http::{HeaderName, HeaderValue};
use keyledger_commands::sealing::new_signing_secret;
use keyledger_commands::CommandContext;
use keyledger_domain::webhook::subscription::{ChangeWebhook, CreateWebhook, CustomHeaders, Settings};
use keyledger_domain::webhook::target::WebhookUrl;
use keyledger_domain::webhook::{EventTypes, WebhookCommand};
use keyledger_domain::{Permission, TenantId};
use keyledger_projections::webhook_subscriptions::{self as subscriptions, SubscriptionRow};
use keyledger_projections::webhooks as templates;
use uuid::Uuid;

fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidWebhook, message.to_string())
}

/// Headers a subscription may not set: the signature's, and what the HTTP client decides.
const RESERVED: [&str; 9] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "user-agent",
];
const MAX_HEADERS: usize = 20;
const MAX_DESCRIPTION: usize = 500;

fn url(raw: String) -> Result<WebhookUrl, ApiError> {
    raw.parse().map_err(invalid)
}

fn event_types(raw: Vec<String>) -> Result<EventTypes, ApiError> {
    EventTypes::parse(&raw).map_err(invalid)
}

fn headers(raw: std::collections::BTreeMap<String, String>) -> Result<CustomHeaders, ApiError> {
    if raw.len() > MAX_HEADERS {
        return Err(invalid(format!("at most {MAX_HEADERS} custom headers")));
    }
    raw.into_iter()
        .map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            if name.len() > 64 || HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(invalid(format!("{name:?} is not a header name")));
            }
            if RESERVED.contains(&name.as_str()) {
                return Err(invalid(format!("the header {name} is set by Keyledger")));
            }
            if value.len() > 1024 || HeaderValue::from_str(&value).is_err() {
                return Err(invalid(format!("the value of {name} is not a header value")));
            }
            Ok((name, value))
        })
        .collect()
}

fn description(raw: String) -> Result<String, ApiError> {
    if raw.chars().count() > MAX_DESCRIPTION || raw.chars().any(char::is_control) {
        return Err(invalid(format!(
            "the description is at most {MAX_DESCRIPTION} characters, without control characters"
        )));
    }
    Ok(raw)
}

/// A live template of `tenant`, or a refusal.
async fn template(state: &AppState, tenant: &TenantId, raw: &str) -> Result<Uuid, ApiError> {
    let refused = || invalid(format!("there is no webhook template {raw} in tenant {tenant}"));
    let id = Uuid::parse_str(raw).map_err(|_| refused())?;
    match templates::get_template(&state.db, &id.to_string()).await? {
        Some(row) if row.tenant == tenant.as_str() => Ok(id),
        _ => Err(refused()),
    }
}

/// The live subscription `id` if the caller may see it, with its tenant; otherwise not found.
pub(super) async fn visible(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
) -> Result<(Uuid, TenantId, SubscriptionRow), ApiError> {
    let not_found = || ApiError::not_found("webhook");
    let webhook_id = Uuid::parse_str(id).map_err(|_| not_found())?;
    state.fresh().await?;
    match subscriptions::get_subscription(&state.db, &webhook_id.to_string()).await? {
        Some(row) if ctx.actor.may_access_named(&row.tenant) => {
            let tenant = TenantId::try_from(row.tenant.clone()).map_err(ApiError::internal)?;
            Ok((webhook_id, tenant, row))
        }
        _ => Err(not_found()),
    }
}

async fn row(state: &AppState, id: Uuid, position: i64) -> Result<SubscriptionRow, ApiError> {
    state.settle(position).await;
    subscriptions::get_subscription(&state.db, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::internal("webhook not in the read model after catch-up"))
}

pub async fn create_webhook(
    state: &AppState,
    ctx: &CommandContext,
    body: CreateWebhookBody,
) -> Result<WebhookView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let tenant = super::webhooks::owner(ctx, body.tenant)?;
    state.fresh().await?;
    let settings = Settings {
        url: url(body.url)?,
        event_types: event_types(body.event_types)?,
        template_id: match body.template_id {
            Some(raw) => Some(template(state, &tenant, &raw).await?),
            None => None,
        },
        headers: headers(body.headers.map(|h| h.0).unwrap_or_default())?,
        description: description(body.description.unwrap_or_default())?,
    };
    let secret = new_signing_secret();
    let sealed = state.bus.sealer()?.seal(&secret);
    let id = Uuid::new_v4();
    let owner = tenant.clone();
    let committed = state
        .bus
        .webhook_command(ctx, id, &tenant, |at| {
            WebhookCommand::Create(Box::new(CreateWebhook {
                webhook_id: id,
                tenant: owner,
                settings,
                secret: sealed,
                at,
            }))
        })
        .await?;
    let mut view = WebhookView::from(row(state, id, committed.position).await?);
    view.secret = Some(secret.shown());
    Ok(view)
}

pub async fn list_webhooks(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<ListResponse<WebhookView>, ApiError> {
    let l = super::listing(state, ctx, Permission::ApiManagementRead, tenant, limit, cursor).await?;
    Ok(
        subscriptions::list_subscriptions(&state.db, l.tenant.as_deref(), l.limit, l.cursor)
            .await?
            .into(),
    )
}

pub async fn get_webhook(state: &AppState, ctx: &CommandContext, id: &str) -> Result<WebhookView, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    Ok(visible(state, ctx, id).await?.2.into())
}

pub async fn update_webhook(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    body: UpdateWebhookBody,
) -> Result<WebhookView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let (webhook_id, tenant, _) = visible(state, ctx, id).await?;
    let template_id = match body.template_id {
        MaybeUndefined::Value(raw) => Some(Some(template(state, &tenant, &raw).await?)),
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Undefined => None,
    };
    let url = body.url.map(url).transpose()?;
    let event_types = body.event_types.map(event_types).transpose()?;
    let headers = body.headers.map(|h| headers(h.0)).transpose()?;
    let description = body.description.map(description).transpose()?;
    let committed = state
        .bus
        .webhook_command(ctx, webhook_id, &tenant, |at| {
            WebhookCommand::Change(Box::new(ChangeWebhook {
                url,
                event_types,
                template_id,
                headers,
                description,
                at,
            }))
        })
        .await?;
    Ok(row(state, webhook_id, committed.position).await?.into())
}

/// A state change: `pause`, `resume` or `enable`.
pub async fn set_status(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    action: StatusAction,
) -> Result<WebhookView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let (webhook_id, tenant, _) = visible(state, ctx, id).await?;
    let committed = state
        .bus
        .webhook_command(ctx, webhook_id, &tenant, |at| match action {
            StatusAction::Pause => WebhookCommand::Pause { at },
            StatusAction::Resume => WebhookCommand::Resume { at },
            StatusAction::Enable => WebhookCommand::Enable { at },
        })
        .await?;
    Ok(row(state, webhook_id, committed.position).await?.into())
}

#[derive(Debug, Clone, Copy)]
pub enum StatusAction {
    Pause,
    Resume,
    Enable,
}

pub async fn rotate_secret(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    body: RotateSecretBody,
) -> Result<WebhookView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let grace = match body.grace_seconds.unwrap_or(86_400) {
        seconds @ 0..=604_800 => chrono::Duration::seconds(seconds),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidGracePeriod,
                "grace_seconds is 0 to 604800",
            ))
        }
    };
    let (webhook_id, tenant, _) = visible(state, ctx, id).await?;
    let secret = new_signing_secret();
    let sealed = state.bus.sealer()?.seal(&secret);
    let committed = state
        .bus
        .webhook_command(ctx, webhook_id, &tenant, |at| WebhookCommand::RotateSecret {
            secret: sealed,
            grace,
            at,
        })
        .await?;
    let mut view = WebhookView::from(row(state, webhook_id, committed.position).await?);
    view.secret = Some(secret.shown());
    Ok(view)
}

pub async fn delete_webhook(state: &AppState, ctx: &CommandContext, id: &str) -> Result<(), ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let (webhook_id, tenant, _) = visible(state, ctx, id).await?;
    let committed = state
        .bus
        .webhook_command(ctx, webhook_id, &tenant, |at| WebhookCommand::Delete { at })
        .await?;
    state.settle(committed.position).await;
    Ok(())
}
