//! `GET /v1/usage/export`: a window's usage per key, endpoint or UTC day, as CSV or JSON, for
//! billing. Summed from the hourly rollups (kept beyond the raw records) and written as the
//! database sends the rows: memory stays constant whatever the export's size.

use super::super::{require, ApiError, ErrorCode};
use super::usage_filter;
use crate::state::AppState;
use bytes::Bytes;
use futures::Stream;
use keyledger_commands::CommandContext;
use keyledger_domain::usage::{ExportFormat, ExportWindow, Grouping};
use keyledger_domain::Permission;
use keyledger_projections::usage::rollups::export::{self, ExportRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

with_usage_filters! {
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// Start, inclusive: a date (`2026-11-01`, midnight UTC) or an RFC 3339 time at a whole hour.
    pub from: Option<String>,
    /// End, exclusive, as `from`; at most 400 days after it.
    pub to: Option<String>,
    /// `key` (default), `endpoint` or `day`: one row per tenant and that.
    pub group_by: Option<String>,
    /// `csv` (default) or `json`.
    pub format: Option<String>,

}
}

/// One row of an export. Which of `key_id`, `endpoint_id` and `plugin`, or `day`, it holds
/// follows `group_by`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportRowView {
    pub tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The UTC day (`group_by=day`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    pub requests: i64,
    /// Answered 2xx.
    pub successes: i64,
    /// Answered 4xx or 5xx.
    pub errors: i64,
    pub rate_limited: i64,
    pub avg_latency_ms: Option<f64>,
}

impl From<ExportRow> for ExportRowView {
    fn from(r: ExportRow) -> Self {
        ExportRowView {
            avg_latency_ms: (r.requests > 0).then(|| r.latency_sum_us as f64 / r.requests as f64 / 1000.0),
            tenant: r.tenant,
            key_id: r.key_id,
            endpoint_id: r.endpoint_id,
            plugin: r.plugin,
            day: r.day.map(|d| d.to_string()),
            requests: r.requests,
            successes: r.successes,
            errors: r.errors,
            rate_limited: r.rate_limited,
        }
    }
}

/// An export ready to send: its content type, file name and body.
pub struct Export<S> {
    pub content_type: &'static str,
    pub filename: String,
    pub body: S,
}

fn csv_header(grouping: Grouping) -> &'static str {
    match grouping {
        Grouping::Key => "tenant,key_id,requests,successes,errors,rate_limited,avg_latency_ms\n",
        Grouping::Endpoint => "tenant,endpoint_id,plugin,requests,successes,errors,rate_limited,avg_latency_ms\n",
        Grouping::Day => "tenant,day,requests,successes,errors,rate_limited,avg_latency_ms\n",
    }
}

fn csv_line(grouping: Grouping, row: &ExportRowView) -> Result<Bytes, std::io::Error> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut fields = vec![row.tenant.clone()];
    match grouping {
        Grouping::Key => fields.push(text(&row.key_id)),
        Grouping::Endpoint => fields.extend([text(&row.endpoint_id), text(&row.plugin)]),
        Grouping::Day => fields.push(text(&row.day)),
    }
    fields.extend([
        row.requests.to_string(),
        row.successes.to_string(),
        row.errors.to_string(),
        row.rate_limited.to_string(),
        row.avg_latency_ms.map(|ms| format!("{ms:.3}")).unwrap_or_default(),
    ]);
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&fields)?;
    writer.into_inner().map(Bytes::from).map_err(|e| e.into_error())
}

pub fn export(
    state: &AppState,
    ctx: &CommandContext,
    mut input: ExportInput,
) -> Result<Export<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>, ApiError> {
    require(ctx, Permission::ApiManagementRead)?;
    let invalid = |e: &dyn std::fmt::Display| ApiError::new(ErrorCode::InvalidQuery, e.to_string());
    let (Some(from), Some(to)) = (input.from.as_deref(), input.to.as_deref()) else {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "from and to are required"));
    };
    let window = ExportWindow::parse(from, to).map_err(|e| invalid(&e))?;
    let grouping: Grouping = input
        .group_by
        .as_deref()
        .unwrap_or("key")
        .parse()
        .map_err(|e| invalid(&e))?;
    let format: ExportFormat = input
        .format
        .as_deref()
        .unwrap_or("csv")
        .parse()
        .map_err(|e| invalid(&e))?;
    let filter = usage_filter(ctx, input.filters())?;
    let rows = export::export(state.db.clone(), grouping, window, filter);
    let (content_type, extension) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Json => ("application/json", "json"),
    };
    let filename = format!(
        "usage-{}-{}-by-{}.{extension}",
        window.from.format("%Y%m%dT%H"),
        window.to.format("%Y%m%dT%H"),
        grouping.as_str()
    );
    let opening = match format {
        ExportFormat::Csv => Bytes::from_static(csv_header(grouping).as_bytes()),
        ExportFormat::Json => Bytes::from_static(b"["),
    };
    let body = futures::stream::unfold(
        (Some(opening), rows, 0usize, false),
        move |(opening, mut rows, written, done)| async move {
            if let Some(opening) = opening {
                return Some((Ok(opening), (None, rows, written, done)));
            }
            if done {
                return None;
            }
            match rows.recv().await {
                Some(Ok(row)) => {
                    let row = ExportRowView::from(row);
                    let chunk = match format {
                        ExportFormat::Csv => csv_line(grouping, &row),
                        ExportFormat::Json => serde_json::to_vec(&row)
                            .map(|json| {
                                let mut chunk = if written > 0 { b",".to_vec() } else { Vec::new() };
                                chunk.extend(json);
                                Bytes::from(chunk)
                            })
                            .map_err(std::io::Error::other),
                    };
                    Some((chunk, (None, rows, written + 1, false)))
                }
                // A failure midway cannot change the status already sent: the body is cut short,
                // which the client sees as an incomplete answer, and the cause is logged.
                Some(Err(e)) => {
                    tracing::error!(error = %e, "a usage export failed midway");
                    Some((Err(std::io::Error::other(e.to_string())), (None, rows, written, true)))
                }
                None => match format {
                    ExportFormat::Json => Some((Ok(Bytes::from_static(b"]")), (None, rows, written, true))),
                    ExportFormat::Csv => None,
                },
            }
        },
    );
    Ok(Export {
        content_type,
        filename,
        body,
    })
}
