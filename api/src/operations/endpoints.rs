//! The endpoint registry: register, change, deprecate, (de)activate, enable per tenant, explore.

use super::{require, ApiError, ErrorCode};
use crate::rest::dto::{self, HistoryEntry, ListResponse};
use crate::rest::endpoint_dto::{CreateEndpointBody, EndpointView, UpdateEndpointBody};
use crate::state::AppState;
use async_graphql::MaybeUndefined;
use chrono::{DateTime, Utc};
use keyledger_commands::CommandContext;
use keyledger_domain::endpoint::{
    route_stream_id, Description, EndpointChange, EndpointSpec, JsonSchema, PluginName, SpecError, UpstreamUrl,
};
use keyledger_domain::route::{HttpMethod, PathTemplate};
use keyledger_domain::{EndpointCommand, Permission, TenantId};
use keyledger_projections::endpoints::EndpointFilter;
use keyledger_projections::endpoints::EndpointRow;
use keyledger_projections::endpoints::Visibility;
use serde::Deserialize;
use std::collections::BTreeSet;
use utoipa::IntoParams;
use uuid::Uuid;

fn spec_error(code: ErrorCode) -> impl Fn(SpecError) -> ApiError {
    move |e| ApiError::new(code, e.to_string())
}

pub fn methods(raw: Vec<String>) -> Result<BTreeSet<HttpMethod>, ApiError> {
    raw.into_iter()
        .map(|m| HttpMethod::try_from(m).map_err(|e| ApiError::new(ErrorCode::InvalidMethods, e.to_string())))
        .collect()
}

pub fn path(raw: String) -> Result<PathTemplate, ApiError> {
    PathTemplate::try_from(raw).map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.to_string()))
}

pub fn plugin(raw: String) -> Result<PluginName, ApiError> {
    PluginName::try_from(raw).map_err(spec_error(ErrorCode::InvalidPlugin))
}

pub fn upstream(raw: String) -> Result<UpstreamUrl, ApiError> {
    UpstreamUrl::try_from(raw).map_err(spec_error(ErrorCode::InvalidUpstreamUrl))
}

pub fn description(raw: String) -> Result<Description, ApiError> {
    Description::try_from(raw).map_err(spec_error(ErrorCode::InvalidDescription))
}

pub fn schema(raw: serde_json::Value) -> Result<JsonSchema, ApiError> {
    JsonSchema::try_from(raw).map_err(spec_error(ErrorCode::InvalidSchema))
}

/// Which endpoints the actor may see: superusers everything, tenant admins every active one,
/// everyone else what is enabled for their tenant.
fn visibility(ctx: &CommandContext) -> Visibility {
    if ctx.actor.is_superuser() {
        Visibility::All
    } else if ctx.actor.has(Permission::TenantAdmin) {
        Visibility::Active
    } else {
        Visibility::EnabledOnly
    }
}

fn visible(ctx: &CommandContext, row: &EndpointRow) -> bool {
    match visibility(ctx) {
        Visibility::All => true,
        Visibility::Active => row.active,
        Visibility::EnabledOnly => row.enabled,
    }
}

fn view(ctx: &CommandContext, row: EndpointRow) -> EndpointView {
    EndpointView::from_row(row, ctx.actor.is_superuser())
}

/// The tenant whose enablement a read reflects: the actor's, or for superusers the one asked for.
fn tenant_for(ctx: &CommandContext, requested: Option<String>) -> Result<TenantId, ApiError> {
    Ok(match super::tenant_filter(ctx, requested)? {
        Some(t) => TenantId::try_from(t).map_err(ApiError::internal)?,
        None => ctx.actor.tenant.clone(),
    })
}

/// An endpoint the actor may see, with the stream that owns it.
async fn find(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    tenant: &TenantId,
) -> Result<(Uuid, EndpointRow), ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let endpoint_id = Uuid::parse_str(id).map_err(|_| ApiError::not_found("endpoint"))?;
    state.fresh().await?;
    match keyledger_projections::endpoints::get_endpoint(&state.db, &endpoint_id.to_string(), tenant.as_str()).await? {
        Some(row) if visible(ctx, &row) => Ok((endpoint_id, row)),
        _ => Err(ApiError::not_found("endpoint")),
    }
}

async fn reload(state: &AppState, ctx: &CommandContext, id: Uuid, tenant: &TenantId) -> Result<EndpointView, ApiError> {
    let row = keyledger_projections::endpoints::get_endpoint(&state.db, &id.to_string(), tenant.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    Ok(view(ctx, row))
}

fn route_id(row: &EndpointRow) -> Result<Uuid, ApiError> {
    Uuid::parse_str(&row.route_id).map_err(ApiError::internal)
}

pub async fn register(
    state: &AppState,
    ctx: &CommandContext,
    body: CreateEndpointBody,
) -> Result<EndpointView, ApiError> {
    let spec = EndpointSpec {
        methods: methods(body.methods)?,
        path: path(body.path)?,
        plugin: plugin(body.plugin)?,
        description: description(body.description)?,
        required_scopes: dto::scopes(body.required_scopes)?,
        request_schema: body.request_schema.map(schema).transpose()?,
        response_schema: body.response_schema.map(schema).transpose()?,
        upstream_url: upstream(body.upstream_url)?,
    };
    let endpoint_id = Uuid::new_v4();
    let route = route_stream_id(&spec.path);
    let committed = state
        .bus
        .endpoint_command(ctx, route, |at| EndpointCommand::Register {
            endpoint_id,
            spec: Box::new(spec),
            at,
        })
        .await?;
    state.settle(committed.position).await;
    reload(state, ctx, endpoint_id, &ctx.actor.tenant).await
}

/// Filters of the explorer (REST query string, GraphQL arguments).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EndpointListInput {
    /// Free text over path and description.
    pub q: Option<String>,
    pub plugin: Option<String>,
    /// GET, POST, …
    pub method: Option<String>,
    /// `active` or `inactive` (inactive: superusers only).
    pub status: Option<String>,
    pub deprecated: Option<bool>,
    /// Superusers: whose enablement the `enabled` flags show (default: their own tenant).
    pub tenant: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub async fn list(
    state: &AppState,
    ctx: &CommandContext,
    p: EndpointListInput,
) -> Result<ListResponse<EndpointView>, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let tenant = tenant_for(ctx, p.tenant)?;
    let active = match p.status.as_deref() {
        None => None,
        Some("active") => Some(true),
        Some("inactive") if ctx.actor.is_superuser() => Some(false),
        Some("inactive") => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only superusers see inactive endpoints",
            ))
        }
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidStatus,
                format!("status must be active or inactive, got {other:?}"),
            ))
        }
    };
    let method = p
        .method
        .map(|m| HttpMethod::try_from(m).map_err(|e| ApiError::new(ErrorCode::InvalidMethods, e.to_string())))
        .transpose()?;
    let after = match p.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            keyledger_projections::endpoints::decode_path_cursor(c)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidCursor, "cursor is not one this API returned"))?,
        ),
    };
    let filter = EndpointFilter {
        tenant: tenant.to_string(),
        visibility: visibility(ctx),
        search: p.q,
        plugin: p.plugin,
        method: method.map(|m| m.as_str().to_owned()),
        active,
        deprecated: p.deprecated,
        limit: dto::limit(p.limit)?,
        after,
    };
    state.fresh().await?;
    let page = keyledger_projections::endpoints::list_endpoints(&state.db, &filter).await?;
    Ok(ListResponse {
        data: page.data.into_iter().map(|r| view(ctx, r)).collect(),
        next_cursor: page.next_cursor,
    })
}

pub async fn get(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    tenant: Option<String>,
) -> Result<EndpointView, ApiError> {
    let tenant = tenant_for(ctx, tenant)?;
    let (_, row) = find(state, ctx, id, &tenant).await?;
    Ok(view(ctx, row))
}

pub async fn update(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    body: UpdateEndpointBody,
) -> Result<EndpointView, ApiError> {
    let tenant = ctx.actor.tenant.clone();
    let (endpoint_id, row) = find(state, ctx, id, &tenant).await?;
    let schema_change = |v: MaybeUndefined<serde_json::Value>| -> Result<Option<Option<JsonSchema>>, ApiError> {
        match v {
            MaybeUndefined::Undefined => Ok(None),
            MaybeUndefined::Null => Ok(Some(None)),
            MaybeUndefined::Value(v) => Ok(Some(Some(schema(v)?))),
        }
    };
    let change = EndpointChange {
        methods: body.methods.map(methods).transpose()?,
        path: body.path.map(path).transpose()?,
        plugin: body.plugin.map(plugin).transpose()?,
        description: body.description.map(description).transpose()?,
        required_scopes: body.required_scopes.map(dto::scopes).transpose()?,
        request_schema: schema_change(body.request_schema)?,
        response_schema: schema_change(body.response_schema)?,
        upstream_url: body.upstream_url.map(upstream).transpose()?,
    };
    let committed = state
        .bus
        .endpoint_command(ctx, route_id(&row)?, |at| EndpointCommand::Change {
            endpoint_id,
            change: Box::new(change),
            at,
        })
        .await?;
    state.settle(committed.position).await;
    reload(state, ctx, endpoint_id, &tenant).await
}

/// What an endpoint action does.
pub enum Action {
    Deprecate { sunset: Option<DateTime<Utc>> },
    Undeprecate,
    Activate,
    Deactivate,
    Enable { tenant: Option<String> },
    Disable { tenant: Option<String> },
}

pub async fn act(state: &AppState, ctx: &CommandContext, id: &str, action: Action) -> Result<EndpointView, ApiError> {
    let tenant = match &action {
        Action::Enable { tenant } | Action::Disable { tenant } => match tenant {
            Some(t) => dto::tenant(Some(t.clone()))?.unwrap_or_else(|| ctx.actor.tenant.clone()),
            None => ctx.actor.tenant.clone(),
        },
        _ => ctx.actor.tenant.clone(),
    };
    let (endpoint_id, row) = find(state, ctx, id, &tenant).await?;
    let for_tenant = tenant.clone();
    let committed = state
        .bus
        .endpoint_command(ctx, route_id(&row)?, move |at| match action {
            Action::Deprecate { sunset } => EndpointCommand::Deprecate {
                endpoint_id,
                sunset,
                at,
            },
            Action::Undeprecate => EndpointCommand::Undeprecate { endpoint_id, at },
            Action::Activate => EndpointCommand::SetActive {
                endpoint_id,
                active: true,
                at,
            },
            Action::Deactivate => EndpointCommand::SetActive {
                endpoint_id,
                active: false,
                at,
            },
            Action::Enable { .. } => EndpointCommand::SetTenantEnabled {
                endpoint_id,
                tenant: for_tenant,
                enabled: true,
                at,
            },
            Action::Disable { .. } => EndpointCommand::SetTenantEnabled {
                endpoint_id,
                tenant: for_tenant,
                enabled: false,
                at,
            },
        })
        .await?;
    state.settle(committed.position).await;
    reload(state, ctx, endpoint_id, &tenant).await
}

/// The endpoint's events, oldest first (tenant enablement of other tenants left out).
pub async fn history(state: &AppState, ctx: &CommandContext, id: &str) -> Result<Vec<HistoryEntry>, ApiError> {
    let (endpoint_id, row) = find(state, ctx, id, &ctx.actor.tenant).await?;
    let events = state.bus.endpoint_events(ctx, route_id(&row)?).await?;
    Ok(events
        .into_iter()
        .filter(|e| e.event.endpoint_id() == endpoint_id)
        .filter(|e| {
            ctx.actor.is_superuser() || e.metadata.tenant == ctx.actor.tenant.as_str() || !is_tenant_event(&e.event)
        })
        .map(|e| {
            let at = e.event.at();
            HistoryEntry::from_stored(e, at)
        })
        .collect())
}

fn is_tenant_event(e: &keyledger_domain::EndpointEvent) -> bool {
    use keyledger_domain::EndpointEvent::*;
    matches!(e, EndpointEnabledForTenant { .. } | EndpointDisabledForTenant { .. })
}

/// The tenant whose enabled endpoints a document or SDK covers, and those endpoints.
async fn tenant_endpoints(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Option<String>,
) -> Result<(String, Vec<EndpointRow>), ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let tenant = super::tenant_filter(ctx, tenant)?.unwrap_or_else(|| ctx.actor.tenant.to_string());
    state.fresh().await?;
    let rows = keyledger_projections::endpoints::enabled_endpoints(&state.db, &tenant).await?;
    Ok((tenant, rows))
}

/// The tenant's OpenAPI 3.1 document.
pub async fn tenant_document(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    let (tenant, rows) = tenant_endpoints(state, ctx, tenant).await?;
    Ok(crate::tenant_openapi::document(&tenant, &state.edge_url, &rows))
}

/// The tenant's SDK for `language` as a ZIP archive.
pub async fn sdk(
    state: &AppState,
    ctx: &CommandContext,
    language: &str,
    tenant: Option<String>,
) -> Result<(crate::sdk::Language, Vec<u8>), ApiError> {
    let language = crate::sdk::Language::parse(language)
        .ok_or_else(|| ApiError::not_found("SDK (python, typescript, javascript, php or curl)"))?;
    let (tenant, rows) = tenant_endpoints(state, ctx, tenant).await?;
    let model = crate::sdk::model::build(&tenant, &state.edge_url, &rows);
    Ok((language, crate::sdk::zip(language, &model)?))
}
