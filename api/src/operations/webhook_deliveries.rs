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
use keyledger_projections::webhook_subscriptions as subscriptions;
use uuid::Uuid;

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
    let webhook_id = subscription_filter(p.webhook_id)?;
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

/// A subscription to filter by, live or deleted (its deliveries outlive it); the tenant filter
/// keeps another tenant's out.
fn subscription_filter(raw: Option<String>) -> Result<Option<String>, ApiError> {
    raw.map(|id| {
        Uuid::parse_str(&id)
            .map(|id| id.to_string())
            .map_err(|_| invalid_query("webhook_id is a subscription's id (a UUID)"))
    })
    .transpose()
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

/// Sends a delivered or failed delivery again now, under the same `webhook-id`, if its
/// subscription can take it.
pub async fn resend(state: &AppState, ctx: &CommandContext, id: &str) -> Result<DeliveryView, ApiError> {
    require(ctx, Permission::ApiManagementWrite)?;
    let row = visible_delivery(state, ctx, id).await?;
    let conflict = |message: &str| Err(ApiError::new(ErrorCode::Conflict, message));
    match subscriptions::get_subscription(&state.db, &row.webhook_id).await? {
        None => return conflict("the delivery's subscription was deleted"),
        Some(s) if s.status == "disabled" => {
            return conflict("the delivery's subscription is disabled: enable it first, then resend")
        }
        Some(_) => {}
    }
    if !deliveries::resend(&state.db, &row.id, state.clock.now().timestamp_millis()).await? {
        return conflict(match row.status.as_str() {
            "held" => "the delivery is held while its subscription is paused: it is sent once resumed",
            _ => "the delivery is pending: it will be sent without being asked",
        });
    }
    state.dispatcher_due();
    let row = deliveries::get_delivery(&state.db, &row.id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
    Ok(row.into())
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
    let webhook_id = subscription_filter(p.webhook_id)?;
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
