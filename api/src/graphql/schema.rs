use crate::error::{ApiError, ErrorCode};
use crate::operations::{self, AuditInput, KeyListInput};
use crate::rest::dto::{
    AuditEntry, CreateKeyBody, CreateTokenBody, HistoryEntry, KeyView, ListResponse, TokenView, UpdateKeyBody,
};
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

#[derive(MergedObject, Default)]
pub struct Query(
    KeyQuery,
    super::endpoints::EndpointQuery,
    super::analytics::AnalyticsQuery,
    super::webhooks::WebhookQuery,
    super::deliveries::DeliveryQuery,
    super::alerts::AlertQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    KeyMutation,
    super::endpoints::EndpointMutation,
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
