//! A window's figures for alert rules: requests, errors and rate-limit refusals of a key, an
//! endpoint or a whole tenant over the last minutes, summed from the minute rollups of the
//! subject's grain.

use crate::sql::Sql;
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use keyledger_domain::usage::{Grain, Outcome, StatusClass, UsageFilter};
use keyledger_domain::webhook::alert::{AlertSubject, WindowFigures};
use sqlx::Row;

/// The figures of `tenant`'s `subject` in the minutes from `from` until before `until`.
pub async fn window(
    db: &Database,
    tenant: &str,
    subject: &AlertSubject,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
) -> Result<WindowFigures, ProjectionError> {
    let filter = UsageFilter {
        tenant: Some(tenant.to_owned()),
        key_id: match subject {
            AlertSubject::Key(id) => Some(id.clone()),
            _ => None,
        },
        endpoint_id: match subject {
            AlertSubject::Endpoint(id) => Some(id.clone()),
            _ => None,
        },
        ..UsageFilter::default()
    };
    let (low, high) = StatusClass::ERRORS;
    let mut sql = Sql::new(
        "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
         CAST(COALESCE(SUM(CASE WHEN status BETWEEN ",
    );
    sql.bind_int(low.into())
        .push(" AND ")
        .bind_int(high.into())
        .push(" THEN requests ELSE 0 END), 0) AS BIGINT) AS errors, CAST(COALESCE(SUM(CASE WHEN outcome = ")
        .bind_text(Outcome::RateLimited.recorded())
        .push(" THEN requests ELSE 0 END), 0) AS BIGINT) AS rate_limited FROM usage_rollups WHERE grain = ")
        .bind_text(Grain::answering(&filter, false, false).as_str())
        .push(" AND period = 'minute' AND bucket_ms >= ")
        .bind_int(from.timestamp_millis())
        .push(" AND bucket_ms < ")
        .bind_int(until.timestamp_millis());
    crate::usage::filtered(&mut sql, &filter);
    let rows = sql.fetch_all(db).await?;
    let mut figures = WindowFigures::default();
    if let Some(r) = rows.first() {
        let count = |c: &str| -> Result<u64, ProjectionError> { Ok(r.try_get::<i64, _>(c)?.max(0) as u64) };
        figures.requests = count("requests")?;
        figures.errors = count("errors")?;
        figures.rate_limited = count("rate_limited")?;
    }
    Ok(figures)
}
