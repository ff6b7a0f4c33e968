//! The webhook delivery log over GraphQL: the same operations as `/v1/webhooks/deliveries…`.

use super::schema::admin;
use crate::operations::webhook_deliveries as ops;
use crate::rest::delivery_dto::{DeliveryListParams, DeliveryView, RecoveredView, StatsParams, StatsView};
use crate::rest::dto::ListResponse;
use async_graphql::{Context, Object};

#[derive(Default)]
pub struct DeliveryQuery;

#[Object]
impl DeliveryQuery {
    /// Webhook deliveries, newest first; `status` is `pending`, `held`, `delivered` or `failed`.
    #[allow(clippy::too_many_arguments)]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: Option<String>,
        status: Option<String>,
        event_type: Option<String>,
        tenant: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ListResponse<DeliveryView>> {
        let (state, c) = admin(ctx)?;
        let params = DeliveryListParams {
            webhook_id,
            status,
            event_type,
            tenant,
            limit,
            cursor,
        };
        Ok(ops::list_deliveries(state, c, params).await?)
    }

    /// One delivery with every attempt (`attemptLog`).
    async fn webhook_delivery(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<DeliveryView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::get_delivery(state, c, &id).await?)
    }

    /// Deliveries, success rate and attempt durations over 24 hours, 7 and 30 days: of one
    /// subscription, or all the tenant's.
    async fn webhook_stats(
        &self,
        ctx: &Context<'_>,
        webhook_id: Option<String>,
        tenant: Option<String>,
    ) -> async_graphql::Result<StatsView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::stats(state, c, StatsParams { webhook_id, tenant }).await?)
    }
}

#[derive(Default)]
pub struct DeliveryMutation;

#[Object]
impl DeliveryMutation {
    /// Sends a delivered or failed delivery again now, under the same `webhook-id`.
    async fn resend_webhook_delivery(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<DeliveryView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::resend(state, c, &id).await?)
    }

    /// Sends again every failed delivery of the subscription made since `since` (RFC 3339).
    async fn recover_webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        id: String,
        since: String,
    ) -> async_graphql::Result<RecoveredView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::recover(state, c, &id, &since).await?)
    }
}
