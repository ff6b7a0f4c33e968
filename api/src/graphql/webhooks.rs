//! Webhook templates over GraphQL: the same operations as `/v1/webhook-templates`.

use super::schema::admin;
use crate::operations::webhooks as ops;
use crate::rest::dto::ListResponse;
use crate::rest::webhook_dto::{
    CreateTemplateBody, TemplateTestView, TemplateView, TestTemplateBody, UpdateTemplateBody,
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
}
