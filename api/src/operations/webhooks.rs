//! Webhook templates: create, read, change, delete, and render a sample event.

use super::require;
use crate::error::{ApiError, ErrorCode};
use crate::rest::dto::{self, ListResponse};
use crate::rest::webhook_dto::*;
use crate::state::AppState;
use keyledger_commands::CommandContext;
use keyledger_domain::webhook::template::{
    render, CustomTemplate, Message, NewTemplate, TemplateCommand, TemplateError, TemplateKind,
};
use keyledger_domain::webhook::EventType;
use keyledger_domain::{Permission, TenantId};
use keyledger_projections::webhooks::{self, TemplateRow};
use uuid::Uuid;

fn invalid(e: TemplateError) -> ApiError {
    ApiError::new(ErrorCode::InvalidTemplate, e.to_string())
}

fn kind(body: TemplateKindBody) -> TemplateKind {
    match body {
        TemplateKindBody::Default => TemplateKind::Default,
        TemplateKindBody::Slack => TemplateKind::Slack,
        TemplateKindBody::Teams => TemplateKind::Teams,
        TemplateKindBody::Discord => TemplateKind::Discord,
        TemplateKindBody::Custom => TemplateKind::Custom,
    }
}

fn custom(body: Option<String>) -> Result<Option<CustomTemplate>, ApiError> {
    body.map(CustomTemplate::try_from).transpose().map_err(invalid)
}

/// The tenant a new template, subscription or alert rule belongs to: the caller's, or for
/// superusers the one named.
pub(super) fn owner(ctx: &CommandContext, requested: Option<String>) -> Result<TenantId, ApiError> {
    match dto::tenant(requested)? {
        Some(t) if ctx.actor.is_superuser() => Ok(t),
        Some(t) if t != ctx.actor.tenant => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("you cannot act on tenant {t}"),
        )),
        _ => Ok(ctx.actor.tenant.clone()),
    }
}

/// The live template `id` if the caller may see it; otherwise not found.
async fn visible(state: &AppState, ctx: &CommandContext, id: &str) -> Result<(Uuid, TemplateRow), ApiError> {
    let not_found = || ApiError::not_found("webhook template");
    let template_id = Uuid::parse_str(id).map_err(|_| not_found())?;
    state.fresh().await?;
    match webhooks::get_template(&state.db, &template_id.to_string()).await? {
        Some(row) if ctx.actor.may_access_named(&row.tenant) => Ok((template_id, row)),
        _ => Err(not_found()),
    }
}

async fn answer(state: &AppState, id: Uuid, position: i64) -> Result<TemplateView, ApiError> {
    state.settle(position).await;
    webhooks::get_template(&state.db, &id.to_string())
        .await?
        .map(TemplateView::from)
        .ok_or_else(|| ApiError::internal("template not in the read model after catch-up"))
}

pub async fn create_template(
    state: &AppState,
    ctx: &CommandContext,
    body: CreateTemplateBody,
) -> Result<TemplateView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let tenant = owner(ctx, body.tenant)?;
    let (name, kind, text) = (dto::name(body.name)?, kind(body.kind), custom(body.body)?);
    let id = Uuid::new_v4();
    let owner = tenant.clone();
    let committed = state
        .bus
        .template_command(ctx, id, &tenant, |at| {
            TemplateCommand::Create(NewTemplate {
                template_id: id,
                tenant: owner,
                name,
                kind,
                body: text,
                at,
            })
        })
        .await?;
    answer(state, id, committed.position).await
}

pub async fn list_templates(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<ListResponse<TemplateView>, ApiError> {
    let l = super::listing(state, ctx, Permission::ApiManagementRead, tenant, limit, cursor).await?;
    Ok(
        webhooks::list_templates(&state.db, l.tenant.as_deref(), l.limit, l.cursor)
            .await?
            .into(),
    )
}

pub async fn get_template(state: &AppState, ctx: &CommandContext, id: &str) -> Result<TemplateView, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    Ok(visible(state, ctx, id).await?.1.into())
}

pub async fn update_template(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    body: UpdateTemplateBody,
) -> Result<TemplateView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let (template_id, row) = visible(state, ctx, id).await?;
    let tenant = TenantId::try_from(row.tenant).map_err(ApiError::internal)?;
    let name = body.name.map(dto::name).transpose()?;
    let text = custom(body.body)?;
    let committed = state
        .bus
        .template_command(ctx, template_id, &tenant, |at| TemplateCommand::Change {
            name,
            body: text,
            at,
        })
        .await?;
    answer(state, template_id, committed.position).await
}

pub async fn delete_template(state: &AppState, ctx: &CommandContext, id: &str) -> Result<(), ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let (template_id, row) = visible(state, ctx, id).await?;
    let tenant = TenantId::try_from(row.tenant).map_err(ApiError::internal)?;
    let committed = state
        .bus
        .template_command(ctx, template_id, &tenant, |at| TemplateCommand::Delete { at })
        .await?;
    state.settle(committed.position).await;
    Ok(())
}

/// The sample event's fields, by type: what a receiver of that type gets.
fn sample_data(event_type: EventType) -> serde_json::Value {
    use serde_json::json;
    match event_type {
        EventType::KeyCreated
        | EventType::KeyChanged
        | EventType::KeyRevoked
        | EventType::KeyRotated
        | EventType::KeyExpiring
        | EventType::KeyExpired => {
            json!({ "key_id": "0b6f9f2e-5d1c-4f6a-9a53-3f0c2a7f1e42", "name": "billing-service", "environment": "live", "scopes": ["FILES_READ"] })
        }
        EventType::EndpointActivated | EventType::EndpointDeprecated | EventType::EndpointDeactivated => {
            json!({ "endpoint_id": "5a1d2c3b-0e4f-4a6b-8c7d-9e0f1a2b3c4d", "path": "/files/{id}", "methods": ["GET"] })
        }
        EventType::TokenCreated | EventType::TokenDeleted => {
            json!({ "token_id": "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f", "name": "ci" })
        }
        EventType::UsageAlert => {
            json!({ "rule_id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a", "name": "billing-service errors", "subject": { "kind": "key", "id": "0b6f9f2e-5d1c-4f6a-9a53-3f0c2a7f1e42" }, "metric": "error_rate", "threshold": 5.0, "window_minutes": 5, "value": 7.5, "requests": 400, "errors": 30, "rate_limited": 0 })
        }
        EventType::WebhookDisabled => {
            json!({ "webhook_id": "3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6a7b", "url": "https://hooks.example.com/keyledger", "reason": { "kind": "gone" } })
        }
    }
}

/// Renders a sample event through the template: the exact body a delivery would carry, and
/// the platform limits it breaks.
pub async fn test_template(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    body: TestTemplateBody,
) -> Result<TemplateTestView, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let (_, row) = visible(state, ctx, id).await?;
    let kind: TemplateKind = row.kind.parse().map_err(ApiError::internal)?;
    let template = row
        .body
        .map(CustomTemplate::try_from)
        .transpose()
        .map_err(ApiError::internal)?;
    let tenant = TenantId::try_from(row.tenant).map_err(ApiError::internal)?;
    sample(state, kind, template.as_ref(), tenant, body.event_type)
}

/// As [`test_template`], for a template not saved: nothing is stored. A custom text that does
/// not compile is refused with its line, as creating it would be.
pub fn preview_template(
    state: &AppState,
    ctx: &CommandContext,
    body: PreviewTemplateBody,
) -> Result<TemplateTestView, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let kind = kind(body.kind);
    let template = custom(body.body)?;
    if kind == TemplateKind::Custom && template.is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidTemplate,
            "a custom template needs its text in `body`",
        ));
    }
    sample(
        state,
        kind,
        template.as_ref(),
        ctx.actor.tenant.clone(),
        body.event_type,
    )
}

fn sample(
    state: &AppState,
    kind: TemplateKind,
    template: Option<&CustomTemplate>,
    tenant: TenantId,
    event_type: Option<String>,
) -> Result<TemplateTestView, ApiError> {
    let event_type: EventType = match event_type {
        Some(name) => name
            .parse()
            .map_err(|e: keyledger_domain::webhook::event_type::EventTypeError| {
                ApiError::new(ErrorCode::InvalidBody, e.to_string())
            })?,
        None => EventType::KeyCreated,
    };
    let message = Message {
        id: "msg_sample".to_owned(),
        event_type,
        timestamp: state.clock.now(),
        tenant,
        data: sample_data(event_type),
    };
    let rendered = render(kind, template, &message).map_err(invalid)?;
    Ok(TemplateTestView {
        event_type: event_type.as_str().to_owned(),
        content_type: rendered.content_type.to_owned(),
        body: rendered.body,
        limits_broken: rendered
            .limits_broken
            .into_iter()
            .map(|l| LimitBrokenView {
                platform: l.platform.to_owned(),
                limit: l.limit,
                actual: l.actual as u64,
            })
            .collect(),
    })
}
