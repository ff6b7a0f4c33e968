//! The webhook delivery log: deliveries and their attempts, a delivery sent again, a
//! subscription's failed deliveries recovered, and figures over 24 hours, 7 and 30 days.

use super::webhook_subscriptions::visible;
use super::{require, tenant_filter};
use crate::error::{ApiError, ErrorCode};
use crate::rest::delivery_dto::*;
use crate::rest::dto::{self, ListResponse};
use crate::state::AppState;
use chrono::{DateTime, Duration, Utc};
use keyledger_commands::CommandContext;
use keyledger_domain::webhook::EventType;
use keyledger_domain::Permission;
use keyledger_projections::dispatch::deliveries::{self, DeliveryFilter, DeliveryRow};

fn invalid_query(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, message)
}

pub async fn list_deliveries(
    state: &AppState,
    ctx: &CommandContext,
    p: DeliveryListParams,
) -> Result<ListResponse<DeliveryView>, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let tenant = tenant_filter(ctx, p.tenant)?;
    if let Some(status) = &p.status {
        if !deliveries::STATUSES.contains(&status.as_str()) {
            return Err(ApiError::new(
                ErrorCode::InvalidStatus,
                format!("status is one of {}", deliveries::STATUSES.join(", ")),
            ));
        }
    }
    if let Some(event_type) = &p.event_type {
        event_type
            .parse::<EventType>()
            .map_err(|e| invalid_query(format!("event_type: {e}")))?;
    }
    let webhook_id = match p.webhook_id {
        Some(id) => Some(visible(state, ctx, &id).await?.0.to_string()),
        None => None,
    };
    let page = deliveries::list_deliveries(
        &state.db,
        &DeliveryFilter {
            tenant,
            webhook_id,
            status: p.status,
            event_type: p.event_type,
            limit: dto::limit(p.limit)?,
            cursor: dto::cursor(p.cursor.as_deref())?,
        },
    )
    .await?;
    Ok(page.into())
}

/// The delivery `id` if the caller may see it; otherwise not found.
async fn visible_delivery(state: &AppState, ctx: &CommandContext, id: &str) -> Result<DeliveryRow, ApiError> {
    match deliveries::get_delivery(&state.db, id).await? {
        Some(row) if ctx.actor.may_access_named(&row.tenant) => Ok(row),
        _ => Err(ApiError::not_found("webhook delivery")),
    }
}

pub async fn get_delivery(state: &AppState, ctx: &CommandContext, id: &str) -> Result<DeliveryView, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let row = visible_delivery(state, ctx, id).await?;
    let attempts = deliveries::attempts(&state.db, &row.id).await?;
    let mut view = DeliveryView::from(row);
    view.attempt_log = Some(attempts.into_iter().map(AttemptView::from).collect());
    Ok(view)
}

/// Sends a delivered or failed delivery again now, under the same `webhook-id`.
pub async fn resend(state: &AppState, ctx: &CommandContext, id: &str) -> Result<DeliveryView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let row = visible_delivery(state, ctx, id).await?;
    if !deliveries::resend(&state.db, &row.id, state.clock.now().timestamp_millis()).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the delivery is {}: it will be sent without being asked", row.status),
        ));
    }
    state.dispatcher_due();
    Ok(visible_delivery(state, ctx, id).await?.into())
}

/// Sends again every failed delivery of a subscription made since a time.
pub async fn recover(state: &AppState, ctx: &CommandContext, id: &str, since: &str) -> Result<RecoveredView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let since = DateTime::parse_from_rfc3339(since)
        .map_err(|_| invalid_query("since is a time in RFC 3339, e.g. 2026-12-01T00:00:00Z"))?
        .with_timezone(&Utc);
    let (webhook_id, _, row) = visible(state, ctx, id).await?;
    if row.status == "disabled" {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the subscription is disabled: enable it first, then recover its deliveries",
        ));
    }
    let recovered = deliveries::recover(
        &state.db,
        &webhook_id.to_string(),
        since.timestamp_millis(),
        state.clock.now().timestamp_millis(),
    )
    .await?;
    state.dispatcher_due();
    Ok(RecoveredView {
        recovered: recovered.try_into().unwrap_or(i64::MAX),
    })
}

/// Figures over the last 24 hours, 7 days and 30 days.
pub async fn stats(state: &AppState, ctx: &CommandContext, p: StatsParams) -> Result<StatsView, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let tenant = tenant_filter(ctx, p.tenant)?;
    let webhook_id = match p.webhook_id {
        Some(id) => Some(visible(state, ctx, &id).await?.0.to_string()),
        None => None,
    };
    let now = state.clock.now();
    let mut periods = Vec::new();
    for (period, length) in [
        ("24h", Duration::hours(24)),
        ("7d", Duration::days(7)),
        ("30d", Duration::days(30)),
    ] {
        let figures = deliveries::stats(
            &state.db,
            tenant.as_deref(),
            webhook_id.as_deref(),
            (now - length).timestamp_millis(),
        )
        .await?;
        periods.push(PeriodStatsView::new(period, figures));
    }
    Ok(StatsView { webhook_id, periods })
}
