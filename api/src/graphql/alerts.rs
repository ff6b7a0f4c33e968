//! Usage alert rules over GraphQL: the same operations as `/v1/alert-rules`.

use super::schema::admin;
use crate::operations::alert_rules as ops;
use crate::rest::alert_dto::{AlertRuleView, CreateAlertRuleBody};
use crate::rest::dto::ListResponse;
use async_graphql::{Context, Object};

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// A tenant's usage alert rules, newest first.
    async fn alert_rules(
        &self,
        ctx: &Context<'_>,
        tenant: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ListResponse<AlertRuleView>> {
        let (state, c) = admin(ctx)?;
        Ok(ops::list_rules(state, c, tenant, limit, cursor).await?)
    }

    async fn alert_rule(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<AlertRuleView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::get_rule(state, c, &id).await?)
    }
}

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// A rule that fires a `usage.alert` once per breach (`invalid_alert_rule` when it cannot be).
    async fn create_alert_rule(
        &self,
        ctx: &Context<'_>,
        input: CreateAlertRuleBody,
    ) -> async_graphql::Result<AlertRuleView> {
        let (state, c) = admin(ctx)?;
        Ok(ops::create_rule(state, c, input).await?)
    }

    async fn delete_alert_rule(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let (state, c) = admin(ctx)?;
        ops::delete_rule(state, c, &id).await?;
        Ok(true)
    }
}
