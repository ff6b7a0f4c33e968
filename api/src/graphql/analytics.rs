//! Usage figures over GraphQL: the same operations as `/v1/overview`.

use super::schema::admin;
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
}
