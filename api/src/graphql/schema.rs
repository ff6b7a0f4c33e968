use crate::error::{ApiError, ErrorCode};
use crate::operations::endpoints::{self, Action, EndpointListInput};
use crate::operations::tryout::{TryRequest, TryResult};
use crate::operations::{self, import, AuditInput, KeyListInput};
use crate::rest::dto::{
    AuditEntry, CreateKeyBody, CreateTokenBody, HistoryEntry, KeyView, ListResponse, TokenView, UpdateKeyBody,
};
use crate::rest::endpoint_dto::{CreateEndpointBody, EndpointView, ImportReport, UpdateEndpointBody};
use crate::state::AppState;
use async_graphql::{Context, ErrorExtensions, MergedObject, MergedSubscription, Object, Schema, SimpleObject};
use chrono::{DateTime, Utc};
use keyledger_commands::CommandContext;
use keyledger_domain::Permission;

pub type KeyledgerSchema = Schema<Query, Mutation, Subscription>;

#[derive(MergedSubscription, Default)]
pub struct Subscription(super::analytics::AnalyticsSubscription);

/// Limits that keep a single query from doing unbounded work. Consoles' full introspection
/// query nests `ofType` about 20 levels deep, so the depth limit must leave room for it.
const MAX_DEPTH: usize = 32;
const MAX_COMPLEXITY: usize = 5_000;

pub fn build_schema(state: AppState) -> KeyledgerSchema {
    Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .data(state)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// A presented token that did not authenticate; reported on the first field that needs one.
pub struct AuthFailure(pub ApiError);

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        async_graphql::Error::new(e.message.clone()).extend_with(|_, ext| {
            ext.set("code", e.code.as_str());
            ext.set("status", e.status().as_u16());
        })
    }
}

pub(super) fn admin<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<(&'a AppState, &'a CommandContext)> {
    let state = ctx.data::<AppState>()?;
    if let Some(failure) = ctx.data_opt::<AuthFailure>() {
        return Err(failure.0.clone().into());
    }
    match ctx.data_opt::<CommandContext>() {
        Some(command_ctx) => Ok((state, command_ctx)),
        None => Err(ApiError::new(ErrorCode::Unauthorized, "send Authorization: Bearer <admin token>").into()),
    }
}

#[derive(SimpleObject)]
pub struct SdkFile {
    pub filename: String,
    pub content_base64: String,
}

#[derive(SimpleObject)]
pub struct Me {
    pub token_id: Option<String>,
    pub tenant: String,
    /// As the token was issued.
    pub permissions: Vec<String>,
    /// Every permission the token holds, those its permissions include among them
    /// (`TENANT_ADMIN` holds `API_MANAGEMENT_WRITE`): what a client asks before offering an
    /// action.
    pub holds: Vec<String>,
    /// The key scopes this token may grant to keys and tokens it creates.
    pub grantable_scopes: Vec<String>,
}

#[derive(Default)]
pub struct KeyQuery;

#[Object]
impl KeyQuery {
    /// The admin token making this request.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let (_, c) = admin(ctx)?;
        Ok(Me {
            token_id: c.actor.token_id.map(|t| t.to_string()),
            tenant: c.actor.tenant.to_string(),
            permissions: c.actor.permissions.iter().map(|p| p.to_string()).collect(),
            holds: Permission::ALL
                .iter()
                .filter(|p| c.actor.has(**p))
                .map(|p| p.to_string())
                .collect(),
            grantable_scopes: c.actor.scopes.scopes().iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Keys, newest first; revoked ones only with `includeRevoked` or `status: "revoked"`.
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        include_revoked: Option<bool>,
        tenant: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ListResponse<KeyView>> {
        let (state, c) = admin(ctx)?;
        let input = KeyListInput {
            status,
            include_revoked,
            tenant,
            limit,
            cursor,
        };
        Ok(operations::list_keys(state, c, input).await?)
    }

    /// One key; with `asOf`, as it was at that instant.
    async fn api_key(
        &self,
        ctx: &Context<'_>,
        id: String,
        as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<KeyView> {
        let (state, c) = admin(ctx)?;
        Ok(operations::get_key(state, c, &id, as_of).await?)
    }

    /// A key's events, oldest first.
    async fn api_key_history(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Vec<HistoryEntry>> {
        let (state, c) = admin(ctx)?;
        Ok(operations::key_history(state, c, &id).await?)
    }

    async fn admin_tokens(
        &self,
        ctx: &Context<'_>,
        tenant: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ListResponse<TokenView>> {
        let (state, c) = admin(ctx)?;
        Ok(operations::list_tokens(state, c, tenant, limit, cursor).await?)
    }

    /// Every event, newest first. `action` takes comma-separated event types.
    #[allow(clippy::too_many_arguments)]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        actor: Option<String>,
        action: Option<String>,
        since: Option<DateTime<Utc>>,
        tenant: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ListResponse<AuditEntry>> {
        let (state, c) = admin(ctx)?;
        let input = AuditInput {
            actor,
            action,
            since,
            tenant,
            limit,
            cursor,
        };
        Ok(operations::list_audit(state, c, input).await?)
    }
}

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

#[derive(Default)]
pub struct EndpointQuery;
#[derive(Default)]
pub struct EndpointMutation;

#[derive(MergedObject, Default)]
pub struct Query(
    KeyQuery,
    EndpointQuery,
    super::analytics::AnalyticsQuery,
    super::webhooks::WebhookQuery,
    super::deliveries::DeliveryQuery,
    super::alerts::AlertQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    KeyMutation,
    EndpointMutation,
    super::webhooks::WebhookMutation,
    super::deliveries::DeliveryMutation,
    super::alerts::AlertMutation,
);

#[derive(Default)]
pub struct KeyMutation;

#[Object]
impl KeyMutation {
    /// Issue a key; `key` in the answer is the only time the plaintext is shown. A retry with the
    /// same `idempotencyKey` returns the first attempt's key, without `key`.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateKeyBody,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<KeyView> {
        let (state, c) = admin(ctx)?;
        let idem = operations::idempotency_key(idempotency_key.as_deref())?;
        Ok(operations::create_key(state, c, input, idem).await?.view)
    }

    async fn update_api_key(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateKeyBody,
    ) -> async_graphql::Result<KeyView> {
        let (state, c) = admin(ctx)?;
        Ok(operations::update_key(state, c, &id, input).await?)
    }

    /// A new secret (shown once); the old one keeps working for `graceSeconds` (0 to 604800).
    async fn rotate_api_key(
        &self,
        ctx: &Context<'_>,
        id: String,
        grace_seconds: Option<i64>,
    ) -> async_graphql::Result<KeyView> {
        let (state, c) = admin(ctx)?;
        Ok(operations::rotate_key(state, c, &id, grace_seconds).await?)
    }

    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        id: String,
        reason: Option<String>,
    ) -> async_graphql::Result<KeyView> {
        let (state, c) = admin(ctx)?;
        Ok(operations::revoke_key(state, c, &id, reason).await?)
    }

    /// Create an admin token; `token` in the answer is the only time it is shown.
    async fn create_admin_token(&self, ctx: &Context<'_>, input: CreateTokenBody) -> async_graphql::Result<TokenView> {
        let (state, c) = admin(ctx)?;
        Ok(operations::create_token(state, c, input).await?)
    }

    async fn delete_admin_token(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let (state, c) = admin(ctx)?;
        operations::delete_token(state, c, &id).await?;
        Ok(true)
    }
}
