//! Usage figures over GraphQL: the same operations as `/v1/overview` and `/v1/analytics`, and
//! live usage as the subscription `usage` (over `/graphql/ws`), as `/v1/usage/stream`.

use super::schema::admin;
use crate::operations::analytics::report::{self, AnalyticsInput, AnalyticsReport};
use crate::operations::analytics::stream::{self, StreamInput, UsageEvent};
use crate::operations::analytics::{self, Overview};
use async_graphql::{Context, Object, Subscription};
use futures::{Stream, StreamExt};

#[derive(Default)]
pub struct AnalyticsQuery;

#[Object]
impl AnalyticsQuery {
    /// Keys, endpoints and usage at a glance (superusers may name a tenant).
    async fn overview(&self, ctx: &Context<'_>, tenant: Option<String>) -> async_graphql::Result<Overview> {
        let (state, c) = admin(ctx)?;
        Ok(analytics::overview(state, c, tenant).await?)
    }

    /// A range's usage, filtered: as `GET /v1/analytics`.
    #[allow(clippy::too_many_arguments)]
    async fn analytics(
        &self,
        ctx: &Context<'_>,
        range: Option<String>,
        period: Option<String>,
        key: Option<String>,
        endpoint: Option<String>,
        plugin: Option<String>,
        outcome: Option<String>,
        status_class: Option<String>,
        tenant: Option<String>,
    ) -> async_graphql::Result<AnalyticsReport> {
        let (state, c) = admin(ctx)?;
        let input = AnalyticsInput {
            range,
            period,
            key,
            endpoint,
            plugin,
            outcome,
            status_class,
            tenant,
        };
        Ok(report::analytics(state, c, input).await?)
    }
}

#[derive(Default)]
pub struct AnalyticsSubscription;

#[Subscription]
impl AnalyticsSubscription {
    /// Each usage record the edge stores, within a second of its request, filtered as
    /// analytics are. With `after` (a record's `id`), the records stored since are replayed
    /// first, with no gap and none twice. A `UsageLag` says how many records were dropped
    /// because the subscriber did not keep up.
    async fn usage(
        &self,
        ctx: &Context<'_>,
        filter: Option<StreamInput>,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<UsageEvent>>> {
        let (state, c) = admin(ctx)?;
        let input = StreamInput {
            after,
            ..filter.unwrap_or_default()
        };
        let events = stream::usage_stream(state, c, input, None)?;
        let stopping = state.stopping.clone();
        Ok(events
            .map(|event| event.map_err(async_graphql::Error::from))
            .take_until(async move { stopping.cancelled().await }))
    }
}
