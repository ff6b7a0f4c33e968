//! Usage exports for billing: the hourly rollups of a window (of the coarsest grain that holds
//! the grouping and the filter) summed per tenant and key, endpoint
//! or UTC day, streamed row by row as the database sends them, so that an export of any size
//! is held a few rows at a time.

use super::figures::Tenants;
use crate::sql::Sql;
use crate::usage::filtered;
use crate::ProjectionError;
use chrono::NaiveDate;
use futures::StreamExt;
use keyledger_commands::Database;
use keyledger_domain::usage::{ExportWindow, Grain, Grouping, Outcome, Period, StatusClass, UsageFilter};
use sqlx::any::AnyRow;
use sqlx::Row;
use tokio::sync::mpsc;

/// Rows read ahead of the client.
const AHEAD: usize = 64;
const DAY_MS: i64 = 86_400_000;

/// One exported row: what it is about (by the grouping) and its sums.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub tenant: String,
    pub key_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub plugin: Option<String>,
    pub day: Option<NaiveDate>,
    pub requests: i64,
    /// Answered 2xx.
    pub successes: i64,
    /// Answered 4xx or 5xx.
    pub errors: i64,
    pub rate_limited: i64,
    pub latency_sum_us: i64,
}

fn sql(grouping: Grouping, window: ExportWindow, filter: &UsageFilter, tenants: &Tenants) -> Sql {
    let group = match grouping {
        Grouping::Key => "tenant, key_id".to_owned(),
        Grouping::Endpoint => "tenant, endpoint_id, plugin".to_owned(),
        Grouping::Day => format!("tenant, bucket_ms - (bucket_ms % {DAY_MS})"),
    };
    let named = match grouping {
        Grouping::Key => "tenant, key_id",
        Grouping::Endpoint => "tenant, endpoint_id, plugin",
        Grouping::Day => "tenant",
    };
    let mut sql = Sql::new(&format!(
        "SELECT {named}, CAST(MIN(bucket_ms) - (MIN(bucket_ms) % {DAY_MS}) AS BIGINT) AS day_ms, \
         CAST(SUM(requests) AS BIGINT) AS requests, \
         CAST(SUM(CASE WHEN status BETWEEN 200 AND 299 THEN requests ELSE 0 END) AS BIGINT) AS successes, \
         CAST(SUM(CASE WHEN status BETWEEN {} AND {} THEN requests ELSE 0 END) AS BIGINT) AS errors, \
         CAST(SUM(CASE WHEN outcome = '{}' THEN requests ELSE 0 END) AS BIGINT) AS rate_limited, \
         CAST(SUM(latency_sum_us) AS BIGINT) AS latency_sum_us FROM usage_rollups WHERE grain = ",
        StatusClass::ERRORS.0,
        StatusClass::ERRORS.1,
        Outcome::RateLimited.recorded()
    ));
    let grain = Grain::answering(filter, grouping == Grouping::Key, grouping == Grouping::Endpoint);
    sql.bind_text(grain.as_str())
        .push(" AND period = ")
        .bind_text(Period::Hour.as_str())
        .push(" AND bucket_ms >= ")
        .bind_int(window.from.timestamp_millis())
        .push(" AND bucket_ms < ")
        .bind_int(window.to.timestamp_millis());
    filtered(&mut sql, filter);
    tenants.push(&mut sql);
    sql.push(&format!(" GROUP BY {group} ORDER BY {group}"));
    sql
}

fn part(row: &AnyRow, column: &str) -> Result<Option<String>, ProjectionError> {
    let value: String = row.try_get(column)?;
    Ok((!value.is_empty()).then_some(value))
}

fn read(row: &AnyRow, grouping: Grouping) -> Result<ExportRow, ProjectionError> {
    let day = match grouping {
        Grouping::Day => crate::sql::time(row.try_get("day_ms")?).date_naive().into(),
        _ => None,
    };
    let (key_id, endpoint_id, plugin) = match grouping {
        Grouping::Key => (part(row, "key_id")?, None, None),
        Grouping::Endpoint => (None, part(row, "endpoint_id")?, part(row, "plugin")?),
        Grouping::Day => (None, None, None),
    };
    Ok(ExportRow {
        tenant: row.try_get("tenant")?,
        key_id,
        endpoint_id,
        plugin,
        day,
        requests: row.try_get("requests")?,
        successes: row.try_get("successes")?,
        errors: row.try_get("errors")?,
        rate_limited: row.try_get("rate_limited")?,
        latency_sum_us: row.try_get("latency_sum_us")?,
    })
}

/// The export's rows, in order, read while the receiver takes them; an error ends them.
pub fn export(
    db: Database,
    grouping: Grouping,
    window: ExportWindow,
    filter: UsageFilter,
) -> mpsc::Receiver<Result<ExportRow, ProjectionError>> {
    let (rows, receiver) = mpsc::channel(AHEAD);
    tokio::spawn(async move {
        let tenants = match Tenants::of(&db, &filter).await {
            Ok(tenants) => tenants,
            Err(e) => {
                let _ = rows.send(Err(e)).await;
                return;
            }
        };
        let sql = sql(grouping, window, &filter, &tenants);
        let mut fetched = sql.fetch(&db);
        while let Some(row) = fetched.next().await {
            let row = row.map_err(ProjectionError::from).and_then(|r| read(&r, grouping));
            let failed = row.is_err();
            // The client went away: stop reading.
            if rows.send(row).await.is_err() || failed {
                return;
            }
        }
    });
    receiver
}
