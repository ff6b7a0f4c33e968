//! Admin-token commands, and the first token of an empty store.

use super::{CommandBus, CommandContext, Committed, NewSecret};
use crate::secrets;
use crate::CommandError;
use chrono::{DateTime, Utc};
use keyledger_domain::admin_token::{token_stream_id, IssueAdminToken};
use keyledger_domain::name::Name;
use keyledger_domain::{AdminToken, AdminTokenCommand, AdminTokenError, Permission, Scope, TenantId};
use std::collections::BTreeSet;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct IssueTokenRequest {
    pub tenant: Option<TenantId>,
    pub name: Name,
    pub permissions: BTreeSet<Permission>,
    pub scopes: Option<BTreeSet<Scope>>,
    pub expires_at: Option<DateTime<Utc>>,
}

fn refused(e: AdminTokenError) -> CommandError {
    CommandError::Token(e)
}

impl CommandBus {
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label()), err)]
    pub async fn issue_admin_token(
        &self,
        ctx: &CommandContext,
        req: IssueTokenRequest,
    ) -> Result<Committed<NewSecret<String>>, CommandError> {
        let token = secrets::generate_admin_token();
        self.issue_admin_token_with(ctx, req, token).await
    }

    async fn issue_admin_token_with(
        &self,
        ctx: &CommandContext,
        req: IssueTokenRequest,
        token: String,
    ) -> Result<Committed<NewSecret<String>>, CommandError> {
        ctx.require(Permission::TenantAdmin)?;
        let tenant = ctx.target_tenant(req.tenant)?;
        let secret_hash = self.hash(token.clone()).await?;
        let token_id = Uuid::new_v4();
        let stream = token_stream_id(&tenant, &req.name).to_string();
        let at = self.clock.now();
        let command = AdminTokenCommand::Issue(Box::new(IssueAdminToken {
            token_id,
            tenant: tenant.clone(),
            name: req.name,
            permissions: req.permissions,
            scopes: req.scopes,
            expires_at: req.expires_at,
            fingerprint: secrets::fingerprint(&token),
            secret_hash,
            issuer: ctx.actor.clone(),
            at,
        }));
        let metadata = self.metadata(ctx, &tenant, at);
        let loaded = self.load::<AdminToken>(&stream).await?;
        let mut result = self
            .decide(&stream, loaded, command.clone(), metadata.clone(), refused)
            .await;
        if matches!(result, Err(CommandError::Conflict)) {
            // A concurrent create of the same name won; deciding again on what it wrote turns the
            // conflict into the answer a user understands: the name is taken.
            let loaded = self.load::<AdminToken>(&stream).await?;
            result = self.decide(&stream, loaded, command, metadata, refused).await;
        }
        let position = result?.position;
        let secret = NewSecret {
            id: token_id,
            secret: token,
        };
        self.committed(secret, position).await
    }

    /// Deletes the token `token_id`, which belongs to (`tenant`, `name`) as the read model says.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %token_id), err)]
    pub async fn delete_admin_token(
        &self,
        ctx: &CommandContext,
        token_id: Uuid,
        tenant: &TenantId,
        name: &Name,
    ) -> Result<Committed<()>, CommandError> {
        ctx.require(Permission::TenantAdmin)?;
        if !ctx.actor.may_access(tenant) {
            return Err(CommandError::NotFound("admin token"));
        }
        let at = self.clock.now();
        let stream = token_stream_id(tenant, name).to_string();
        let loaded = self.load::<AdminToken>(&stream).await?;
        let command = AdminTokenCommand::Delete {
            token_id,
            by: ctx.actor.clone(),
            at,
        };
        let decided = self
            .decide(&stream, loaded, command, self.metadata(ctx, tenant, at), refused)
            .await?;
        self.committed((), decided.position).await
    }

    /// When no admin token was ever issued (a new store, or one that so far only holds a demo
    /// catalogue), creates the first superuser token (tenant `default`) and returns its plaintext:
    /// `given` if provided (scripts, tests), else a fresh one. Otherwise returns `None`.
    pub async fn bootstrap(&self, given: Option<String>) -> Result<Option<String>, CommandError> {
        let issued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE aggregate_type = $1")
            .bind(<AdminToken as cqrs_es::Aggregate>::TYPE)
            .fetch_one(self.db.pool())
            .await?;
        if issued > 0 {
            return Ok(None);
        }
        let token = given.unwrap_or_else(secrets::generate_admin_token);
        let req = IssueTokenRequest {
            tenant: Some(TenantId::default_tenant()),
            name: "bootstrap".parse().expect("valid name"),
            permissions: [Permission::Superuser].into(),
            scopes: None,
            expires_at: None,
        };
        match self
            .issue_admin_token_with(&CommandContext::system(), req, token.clone())
            .await
        {
            Ok(_) => Ok(Some(token)),
            // Another node bootstrapped the same store at the same moment.
            Err(CommandError::Token(AdminTokenError::TokenAlreadyExists { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
