//! `/v1/overview` and `/v1/analytics`: the usage dashboard's figures; `/v1/usage/stream`: live
//! usage as Server-Sent Events.

use super::endpoints::TenantParam;
use crate::error::ApiError;
use crate::extract::{Admin, Query};
use crate::operations::analytics::export::{self, ExportInput, ExportRowView};
use crate::operations::analytics::report::{self, AnalyticsInput, AnalyticsReport};
use crate::operations::analytics::stream::{self, StreamInput, UsageEvent, UsageRecordView};
use crate::operations::analytics::{self, Overview};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures::{Stream, StreamExt};
use std::convert::Infallible;

/// Keys, endpoints and usage at a glance: the Overview tab.
#[utoipa::path(get, path = "/v1/overview", tag = "analytics", params(TenantParam),
    responses((status = 200, body = Overview)), security(("admin_token" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(p): Query<TenantParam>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(analytics::overview(&state, &ctx, p.tenant).await?))
}

/// A range's usage, filtered: totals, volume, breakdowns, rankings and latency percentiles.
#[utoipa::path(get, path = "/v1/analytics", tag = "analytics", params(AnalyticsInput),
    responses((status = 200, body = AnalyticsReport)), security(("admin_token" = [])))]
pub async fn analytics(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(input): Query<AnalyticsInput>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(report::analytics(&state, &ctx, input).await?))
}

/// Live usage as Server-Sent Events: an `event: usage` for each record the edge stores (its
/// `id` is the record's id, its `data` a `UsageRecordView`), within a second of the request.
/// Reconnecting with `Last-Event-ID` (or `?after=`) first replays the records stored since,
/// with no gap and none twice. A subscriber that does not keep up gets `event: lag` with
/// `{"skipped": n}`, the records it missed. A database failure ends the stream with
/// `event: error` and an error body. A comment every 15 s keeps idle connections open.
#[utoipa::path(get, path = "/v1/usage/stream", tag = "analytics",
    params(StreamInput, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this record id")),
    responses((status = 200, content_type = "text/event-stream", body = UsageRecordView,
        description = "`event: usage` with a UsageRecordView, `event: lag` with a UsageLag")),
    security(("admin_token" = [])))]
pub async fn usage_stream(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    headers: HeaderMap,
    Query(input): Query<StreamInput>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let events = stream::usage_stream(&state, &ctx, input, last_event_id)?;
    let stopping = state.stopping.clone();
    let events = events
        .map(|item| {
            let event = match &item {
                Ok(UsageEvent::Record(r)) => Event::default().event("usage").id(r.id.clone()).json_data(r),
                Ok(UsageEvent::Lag(lag)) => Event::default().event("lag").json_data(lag),
                Err(e) => Event::default().event("error").json_data(e.body()),
            };
            // These serialise to JSON whatever they hold.
            Ok(event.unwrap_or_else(|_| Event::default().comment("unserialisable")))
        })
        .take_until(async move { stopping.cancelled().await });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// A window's usage per key, endpoint or UTC day, for billing: CSV (default) or a JSON array,
/// written as it is read (any size, constant memory). Sums of the hourly rollups, so `from` and
/// `to` fall on whole UTC hours; they are kept beyond the raw records' retention.
#[utoipa::path(get, path = "/v1/usage/export", tag = "analytics", params(ExportInput),
    responses((status = 200, description = "One row per tenant and key, endpoint or day",
        content((String = "text/csv"), (Vec<ExportRowView> = "application/json")))),
    security(("admin_token" = [])))]
pub async fn usage_export(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(input): Query<ExportInput>,
) -> Result<axum::response::Response, ApiError> {
    let export = export::export(&state, &ctx, input)?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, export.content_type.to_owned()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", export.filename),
            ),
        ],
        axum::body::Body::from_stream(export.body),
    )
        .into_response())
}
