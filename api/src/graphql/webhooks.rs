//! Webhooks over GraphQL: the same operations as `/v1/webhooks` and `/v1/webhook-templates`.

use super::schema::admin;
use crate::operations::webhook_subscriptions::{self as subscriptions, StatusAction};
use crate::operations::webhooks as ops;
use crate::rest::dto::ListResponse;
use crate::rest::webhook_dto::{
    CreateTemplateBody, CreateWebhookBody, PreviewTemplateBody, RotateSecretBody, TemplateTestView, TemplateView,
    TestTemplateBody, UpdateTemplateBody, UpdateWebhookBody, WebhookView,
};
use async_graphql::{Context, Object};

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// A tenant's webhook templates, newest first.
    async fn webhook_templates(
        &self,
        ctx: &Context<'_>,
        tenant: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ListResponse<TemplateView>> {
        let (state, c) = admin(ctx)?;
        Ok(ops::list_templates(state, c, tenant, limit, cursor).await?)
    }

    async fn webhook_template(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<TemplateView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::get_template(state, c, &id).await?)
    }

    /// A tenant's webhook subscriptions, newest first.
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        tenant: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ListResponse<WebhookView>> {
        let (state, c) = admin(ctx)?;
        Ok(subscriptions::list_webhooks(state, c, tenant, limit, cursor).await?)
    }

    async fn webhook(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<WebhookView> {
        let (state, c) = admin(ctx)?;
        Ok(subscriptions::get_webhook(state, c, &id).await?)
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// A custom template that does not compile is refused with its line (`invalid_template`).
    async fn create_webhook_template(
        &self,
        ctx: &Context<'_>,
        input: CreateTemplateBody,
    ) -> async_graphql::Result<TemplateView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::create_template(state, c, input).await?)
    }

    async fn update_webhook_template(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateTemplateBody,
    ) -> async_graphql::Result<TemplateView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::update_template(state, c, &id, input).await?)
    }

    async fn delete_webhook_template(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let (state, c) = admin(ctx)?;
        ops::delete_template(state, c, &id).await?;
        Ok(true)
    }

    /// The exact body a delivery of a sample event (`eventType`, default `key.created`) would
    /// carry, and the platform limits it breaks.
    async fn test_webhook_template(
        &self,
        ctx: &Context<'_>,
        id: String,
        event_type: Option<String>,
    ) -> async_graphql::Result<TemplateTestView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::test_template(state, c, &id, TestTemplateBody { event_type }).await?)
    }

    /// As `testWebhookTemplate`, for a template not saved (nothing is stored): the console's
    /// live preview.
    async fn preview_webhook_template(
        &self,
        ctx: &Context<'_>,
        input: PreviewTemplateBody,
    ) -> async_graphql::Result<TemplateTestView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::preview_template(state, c, input)?)
    }

    /// Subscribe a URL; `secret` in the answer signs every delivery and is shown this once.
    async fn create_webhook(&self, ctx: &Context<'_>, input: CreateWebhookBody) -> async_graphql::Result<WebhookView> {
        let (state, c) = admin(ctx)?;
        Ok(subscriptions::create_webhook(state, c, input).await?)
    }

    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateWebhookBody,
    ) -> async_graphql::Result<WebhookView> {
        let (state, c) = admin(ctx)?;
        Ok(subscriptions::update_webhook(state, c, &id, input).await?)
    }

    async fn delete_webhook(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let (state, c) = admin(ctx)?;
        subscriptions::delete_webhook(state, c, &id).await?;
        Ok(true)
    }

    async fn pause_webhook(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<WebhookView> {
        let (state, c) = admin(ctx)?;
        Ok(subscriptions::set_status(state, c, &id, StatusAction::Pause).await?)
    }

    async fn resume_webhook(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<WebhookView> {
        let (state, c) = admin(ctx)?;
        Ok(subscriptions::set_status(state, c, &id, StatusAction::Resume).await?)
    }

    async fn enable_webhook(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<WebhookView> {
        let (state, c) = admin(ctx)?;
        Ok(subscriptions::set_status(state, c, &id, StatusAction::Enable).await?)
    }

    /// A new secret (shown once); the previous one signs beside it for `graceSeconds` (24 h by
    /// default).
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: String,
        grace_seconds: Option<i64>,
    ) -> async_graphql::Result<WebhookView> {
        let (state, c) = admin(ctx)?;
        Ok(subscriptions::rotate_secret(state, c, &id, RotateSecretBody { grace_seconds }).await?)
    }
}
