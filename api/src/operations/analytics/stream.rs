//! Live usage (`GET /v1/usage/stream`, GraphQL subscription `usage`): each record the edge
//! stores, as it is stored, filtered as analytics are. A stream resumes after the last record's
//! id with no gap and no record twice, from the stored log (within its retention).

use super::super::{require, ApiError, ErrorCode};
use super::usage_filter;
use crate::state::AppState;
use async_graphql::{InputObject, SimpleObject, Union};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use keyledger_commands::CommandContext;
use keyledger_domain::usage::{UsageEntry, UsageId};
use keyledger_domain::Permission;
use keyledger_projections::usage::feed::FeedItem;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

with_usage_filters! {
#[derive(Debug, Default, Deserialize, IntoParams, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "UsageFilter")]
pub struct StreamInput {
    /// Resume after this record id (a record's `id`); `Last-Event-ID` takes precedence.
    #[graphql(skip)]
    pub after: Option<String>,
}
}

/// One request the edge decided.
#[derive(Debug, Clone, Serialize, ToSchema, SimpleObject)]
#[graphql(name = "UsageRecord")]
pub struct UsageRecordView {
    /// Its place in the log: resume after it with `Last-Event-ID` or `after`.
    pub id: String,
    pub at: DateTime<Utc>,
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub plugin: Option<String>,
    pub method: String,
    pub path: String,
    pub status: i32,
    /// `VALID`, or why the edge refused.
    pub outcome: String,
    /// From the request's arrival at the edge to its answer (README: Analytics).
    pub latency_ms: f64,
    pub client_ip: Option<String>,
}

impl From<&UsageEntry> for UsageRecordView {
    fn from(e: &UsageEntry) -> Self {
        UsageRecordView {
            id: e.id.to_string(),
            at: e.at,
            tenant: e.tenant.as_deref().map(str::to_owned),
            key_id: e.key_id.as_deref().map(str::to_owned),
            endpoint_id: e.endpoint_id.as_deref().map(str::to_owned),
            plugin: e.plugin.as_deref().map(str::to_owned),
            method: e.method.clone(),
            path: e.path.clone(),
            status: i32::from(e.status),
            outcome: e.outcome.verdict().to_owned(),
            latency_ms: e.latency_us as f64 / 1000.0,
            client_ip: e.client_ip.clone(),
        }
    }
}

/// The subscriber did not keep up: `skipped` records it asked for were dropped. The records
/// after them follow; resuming after the last id received replays them from the log.
#[derive(Debug, Clone, Serialize, ToSchema, SimpleObject)]
pub struct UsageLag {
    pub skipped: i64,
}

#[derive(Debug, Clone, Union)]
pub enum UsageEvent {
    Record(Box<UsageRecordView>),
    Lag(UsageLag),
}

/// The records `input` asks for, after `last_event_id` (or `input.after`); `Err` items are the
/// database failing during a replay, after which the stream ends.
pub fn usage_stream(
    state: &AppState,
    ctx: &CommandContext,
    mut input: StreamInput,
    last_event_id: Option<&str>,
) -> Result<impl Stream<Item = Result<UsageEvent, ApiError>> + Send + 'static, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let after = last_event_id
        .or(input.after.as_deref())
        .map(|id| {
            id.parse::<UsageId>()
                .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.to_string()))
        })
        .transpose()?;
    let filter = usage_filter(ctx, input.filters())?;
    let items = state.usage_feed.stream(state.db.clone(), filter, after);
    Ok(items.map(|item| match item {
        Ok(FeedItem::Entry(entry)) => Ok(UsageEvent::Record(Box::new(UsageRecordView::from(entry.as_ref())))),
        Ok(FeedItem::Lagged { skipped }) => Ok(UsageEvent::Lag(UsageLag {
            skipped: i64::try_from(skipped).unwrap_or(i64::MAX),
        })),
        Err(e) => Err(ApiError::from(e)),
    }))
}
