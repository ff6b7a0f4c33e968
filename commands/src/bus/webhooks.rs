//! Webhook commands: a tenant's subscriptions and templates. One stream each.

use super::{CommandBus, CommandContext, Committed};
use crate::CommandError;
use chrono::{DateTime, Utc};
use keyledger_domain::webhook::alert::{AlertCommand, UsageAlert};
use keyledger_domain::webhook::signature::SigningSecret;
use keyledger_domain::webhook::template::{TemplateCommand, WebhookTemplate};
use keyledger_domain::webhook::{Webhook, WebhookCommand};
use keyledger_domain::{Permission, TenantId};
use uuid::Uuid;

impl CommandBus {
    /// Runs a template command built for the bus's current time, for a template of `tenant`
    /// (the caller's choice when creating, the read model's otherwise). Needs
    /// API_MANAGEMENT_WRITE on that tenant; a template of another tenant is not found.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %template_id), err)]
    pub async fn template_command(
        &self,
        ctx: &CommandContext,
        template_id: Uuid,
        tenant: &TenantId,
        build: impl FnOnce(DateTime<Utc>) -> TemplateCommand,
    ) -> Result<Committed<WebhookTemplate>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        if !ctx.actor.may_access(tenant) {
            return Err(CommandError::NotFound("webhook template"));
        }
        let at = self.clock.now();
        let stream = template_id.to_string();
        let loaded = self.load::<WebhookTemplate>(&stream).await?;
        if loaded.state.template().is_some_and(|t| &t.tenant != tenant) {
            return Err(CommandError::NotFound("webhook template"));
        }
        let metadata = self.metadata(ctx, tenant, at);
        let decided = self
            .decide(&stream, loaded, build(at), metadata, CommandError::Template)
            .await?;
        self.committed(decided.state, decided.position).await
    }

    /// Runs a subscription command built for the bus's current time, for a subscription of
    /// `tenant`, as [`CommandBus::template_command`] does.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %webhook_id), err)]
    pub async fn webhook_command(
        &self,
        ctx: &CommandContext,
        webhook_id: Uuid,
        tenant: &TenantId,
        build: impl FnOnce(DateTime<Utc>) -> WebhookCommand,
    ) -> Result<Committed<Webhook>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        if !ctx.actor.may_access(tenant) {
            return Err(CommandError::NotFound("webhook"));
        }
        let at = self.clock.now();
        let stream = webhook_id.to_string();
        let loaded = self.load::<Webhook>(&stream).await?;
        if loaded.state.subscription().is_some_and(|s| &s.tenant != tenant) {
            return Err(CommandError::NotFound("webhook"));
        }
        let metadata = self.metadata(ctx, tenant, at);
        let decided = self
            .decide(&stream, loaded, build(at), metadata, CommandError::Webhook)
            .await?;
        self.committed(decided.state, decided.position).await
    }

    /// Runs an alert-rule command built for the bus's current time, for a rule of `tenant`, as
    /// [`CommandBus::template_command`] does.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %rule_id), err)]
    pub async fn alert_command(
        &self,
        ctx: &CommandContext,
        rule_id: Uuid,
        tenant: &TenantId,
        build: impl FnOnce(DateTime<Utc>) -> AlertCommand,
    ) -> Result<Committed<UsageAlert>, CommandError> {
        ctx.require(Permission::ApiManagementWrite)?;
        if !ctx.actor.may_access(tenant) {
            return Err(CommandError::NotFound("alert rule"));
        }
        let at = self.clock.now();
        let stream = rule_id.to_string();
        let loaded = self.load::<UsageAlert>(&stream).await?;
        if loaded.state.rule().is_some_and(|r| &r.tenant != tenant) {
            return Err(CommandError::NotFound("alert rule"));
        }
        let metadata = self.metadata(ctx, tenant, at);
        let decided = self
            .decide(&stream, loaded, build(at), metadata, CommandError::Alert)
            .await?;
        self.committed(decided.state, decided.position).await
    }

    /// The secrets a delivery to the subscription is signed with, newest first, each with when
    /// it stops signing (the previous one, during a rotation's grace period); `None` when the
    /// subscription is gone. For the dispatcher: no actor, no tenant check.
    pub async fn webhook_signing_secrets(
        &self,
        webhook_id: Uuid,
    ) -> Result<Option<Vec<(SigningSecret, Option<DateTime<Utc>>)>>, CommandError> {
        let loaded = self.load::<Webhook>(&webhook_id.to_string()).await?;
        let Some(live) = loaded.state.subscription() else {
            return Ok(None);
        };
        let sealer = self.sealer()?;
        let unopenable = |e: crate::sealing::Unopenable| CommandError::Store(crate::StoreError::Corrupt(e.to_string()));
        let mut secrets = vec![(sealer.open(&live.secret).map_err(unopenable)?, None)];
        if let Some((previous, until)) = &live.previous {
            secrets.push((sealer.open(previous).map_err(unopenable)?, Some(*until)));
        }
        Ok(Some(secrets))
    }
}
