//! Usage figures over GraphQL: the same operations as `/v1/overview`.

use super::schema::admin;
use crate::operations::analytics::report::{self, AnalyticsInput, AnalyticsReport};
use crate::operations::analytics::{self, Overview};
use async_graphql::{Context, Object};

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
