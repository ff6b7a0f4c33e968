//! The endpoint registry and the explorer over GraphQL: the same operations as `/v1/endpoints`,
//! the tenant OpenAPI document and the SDKs.

use super::schema::{admin, SdkFile};
use crate::operations::endpoints::{self, Action, EndpointListInput};
use crate::operations::import;
use crate::operations::tryout::{TryRequest, TryResult};
use crate::rest::dto::{HistoryEntry, ListResponse};
use crate::rest::endpoint_dto::{CreateEndpointBody, EndpointView, ImportReport, UpdateEndpointBody};
use async_graphql::{Context, Object};
use chrono::{DateTime, Utc};

#[derive(Default)]
pub struct EndpointQuery;
#[derive(Default)]
pub struct EndpointMutation;

#[Object]
impl EndpointQuery {
    /// The explorer: endpoints you can see, in path order.
    #[allow(clippy::too_many_arguments)]
    async fn endpoints(
        &self,
        ctx: &Context<'_>,
        q: Option<String>,
        plugin: Option<String>,
        method: Option<String>,
        status: Option<String>,
        deprecated: Option<bool>,
        tenant: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ListResponse<EndpointView>> {
        let (state, c) = admin(ctx)?;
        let input = EndpointListInput {
            q,
            plugin,
            method,
            status,
            deprecated,
            tenant,
            limit,
            cursor,
        };
        Ok(endpoints::list(state, c, input).await?)
    }

    async fn endpoint(
        &self,
        ctx: &Context<'_>,
        id: String,
        tenant: Option<String>,
    ) -> async_graphql::Result<EndpointView> {
        let (state, c) = admin(ctx)?;
        Ok(endpoints::get(state, c, &id, tenant).await?)
    }

    async fn endpoint_history(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Vec<HistoryEntry>> {
        let (state, c) = admin(ctx)?;
        Ok(endpoints::history(state, c, &id).await?)
    }

    /// A client library for the tenant's endpoints (python, typescript, javascript, php, curl),
    /// as a base64-encoded ZIP.
    async fn sdk(&self, ctx: &Context<'_>, language: String, tenant: Option<String>) -> async_graphql::Result<SdkFile> {
        let (state, c) = admin(ctx)?;
        let (lang, bytes) = endpoints::sdk(state, c, &language, tenant).await?;
        use base64::Engine as _;
        Ok(SdkFile {
            filename: format!("keyledger-client-{}.zip", lang.as_str()),
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }

    /// The tenant's OpenAPI 3.1 document (JSON).
    async fn tenant_openapi(
        &self,
        ctx: &Context<'_>,
        tenant: Option<String>,
    ) -> async_graphql::Result<serde_json::Value> {
        let (state, c) = admin(ctx)?;
        Ok(endpoints::tenant_document(state, c, tenant).await?)
    }
}

#[Object]
impl EndpointMutation {
    async fn register_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateEndpointBody,
    ) -> async_graphql::Result<EndpointView> {
        let (state, c) = admin(ctx)?;
        Ok(endpoints::register(state, c, input).await?)
    }

    async fn update_endpoint(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateEndpointBody,
    ) -> async_graphql::Result<EndpointView> {
        let (state, c) = admin(ctx)?;
        Ok(endpoints::update(state, c, &id, input).await?)
    }

    async fn deprecate_endpoint(
        &self,
        ctx: &Context<'_>,
        id: String,
        sunset: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<EndpointView> {
        let (state, c) = admin(ctx)?;
        Ok(endpoints::act(state, c, &id, Action::Deprecate { sunset }).await?)
    }

    async fn undeprecate_endpoint(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<EndpointView> {
        let (state, c) = admin(ctx)?;
        Ok(endpoints::act(state, c, &id, Action::Undeprecate).await?)
    }

    /// Global activation (superusers).
    async fn set_endpoint_active(
        &self,
        ctx: &Context<'_>,
        id: String,
        active: bool,
    ) -> async_graphql::Result<EndpointView> {
        let (state, c) = admin(ctx)?;
        let action = if active { Action::Activate } else { Action::Deactivate };
        Ok(endpoints::act(state, c, &id, action).await?)
    }

    /// Enablement for your tenant (tenant admins; superusers may name a tenant).
    async fn set_endpoint_enabled(
        &self,
        ctx: &Context<'_>,
        id: String,
        enabled: bool,
        tenant: Option<String>,
    ) -> async_graphql::Result<EndpointView> {
        let (state, c) = admin(ctx)?;
        let action = if enabled {
            Action::Enable { tenant }
        } else {
            Action::Disable { tenant }
        };
        Ok(endpoints::act(state, c, &id, action).await?)
    }

    /// Send a test request to an endpoint as one of your keys (the explorer's "Test").
    async fn try_endpoint(&self, ctx: &Context<'_>, id: String, input: TryRequest) -> async_graphql::Result<TryResult> {
        let (state, c) = admin(ctx)?;
        Ok(crate::operations::tryout::try_endpoint(state, c, &id, input).await?)
    }

    /// Import a plugin from an OpenAPI 3.0/3.1 document (JSON or YAML text).
    async fn import_endpoints(
        &self,
        ctx: &Context<'_>,
        document: String,
        plugin: String,
        upstream: String,
    ) -> async_graphql::Result<ImportReport> {
        let (state, c) = admin(ctx)?;
        let committed = import::run(&state.bus, c, &document, &plugin, &upstream).await?;
        state.settle(committed.position).await;
        Ok(committed.value)
    }
}
