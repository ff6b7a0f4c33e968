//! Figures read from the rollups: sums over buckets, never a scan of the raw log.

use crate::sql::Sql;
use crate::usage::filtered;
use crate::ProjectionError;
use chrono::{DateTime, Duration, Utc};
use keyledger_commands::Database;
use keyledger_domain::usage::{Outcome, Period, Range, UsageFilter};
use sqlx::Row;

/// Requests, successes (2xx), total latency and rate-limit refusals over some buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub requests: i64,
    pub successes: i64,
    pub latency_sum_us: i64,
    pub rate_limited: i64,
}

/// What the overview shows of usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageOverview {
    /// Since 00:00 UTC today.
    pub requests_today: i64,
    /// The last 7 × 24 hours, the current hour included.
    pub last_7_days: Totals,
    /// The last 24 hours per hour, oldest first, every hour present (0 without traffic).
    pub hourly: Vec<(DateTime<Utc>, i64)>,
}

fn scoped(sql: &mut Sql, tenant: Option<&str>) {
    if let Some(tenant) = tenant {
        sql.push(" AND tenant = ").bind_text(tenant);
    }
}

async fn totals(
    db: &Database,
    tenant: Option<&str>,
    period: Period,
    from: DateTime<Utc>,
) -> Result<Totals, ProjectionError> {
    let mut sql = Sql::new(
        "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
         CAST(COALESCE(SUM(CASE WHEN status BETWEEN 200 AND 299 THEN requests ELSE 0 END), 0) AS BIGINT) AS successes, \
         CAST(COALESCE(SUM(latency_sum_us), 0) AS BIGINT) AS latency, \
         CAST(COALESCE(SUM(CASE WHEN outcome = ",
    );
    sql.bind_text(Outcome::RateLimited.recorded())
        .push(" THEN requests ELSE 0 END), 0) AS BIGINT) AS limited FROM usage_rollups WHERE period = ")
        .bind_text(period.as_str())
        .push(" AND bucket_ms >= ")
        .bind_int(from.timestamp_millis());
    scoped(&mut sql, tenant);
    let rows = sql.fetch_all(db).await?;
    let Some(row) = rows.first() else {
        return Ok(Totals::default());
    };
    Ok(Totals {
        requests: row.try_get("requests")?,
        successes: row.try_get("successes")?,
        latency_sum_us: row.try_get("latency")?,
        rate_limited: row.try_get("limited")?,
    })
}

/// The overview's usage figures for a tenant (or, with `None`, every tenant) at `now`.
pub async fn overview(
    db: &Database,
    tenant: Option<&str>,
    now: DateTime<Utc>,
) -> Result<UsageOverview, ProjectionError> {
    let today = totals(db, tenant, Period::Day, Period::Day.bucket(now)).await?;
    let week_from = Period::Hour.bucket(now) - Duration::hours(7 * 24 - 1);
    let last_7_days = totals(db, tenant, Period::Hour, week_from).await?;
    let buckets = Range::Day
        .buckets(Period::Hour, now)
        .map_err(|e| ProjectionError::Usage(e.to_string()))?;
    let first = buckets.first().map_or(0, |b| b.timestamp_millis());
    let mut sql =
        Sql::new("SELECT bucket_ms, CAST(SUM(requests) AS BIGINT) AS requests FROM usage_rollups WHERE period = ");
    sql.bind_text(Period::Hour.as_str())
        .push(" AND bucket_ms >= ")
        .bind_int(first);
    scoped(&mut sql, tenant);
    sql.push(" GROUP BY bucket_ms");
    let mut counted = std::collections::HashMap::new();
    for row in sql.fetch_all(db).await? {
        counted.insert(row.try_get::<i64, _>("bucket_ms")?, row.try_get::<i64, _>("requests")?);
    }
    let hourly = buckets
        .into_iter()
        .map(|b| (b, counted.get(&b.timestamp_millis()).copied().unwrap_or(0)))
        .collect();
    Ok(UsageOverview {
        requests_today: today.requests,
        last_7_days,
        hourly,
    })
}

/// The rows of one period from `from` until before `until`, filtered.
pub async fn rows(
    db: &Database,
    period: Period,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    f: &UsageFilter,
) -> Result<Vec<keyledger_domain::usage::RollupRow>, ProjectionError> {
    let mut sql = Sql::new(
        "SELECT bucket_ms, key_id, endpoint_id, plugin, outcome, status, requests, latency_sum_us, latency_sketch \
         FROM usage_rollups WHERE period = ",
    );
    sql.bind_text(period.as_str())
        .push(" AND bucket_ms >= ")
        .bind_int(from.timestamp_millis())
        .push(" AND bucket_ms < ")
        .bind_int(until.timestamp_millis());
    filtered(&mut sql, f);
    let mut rows = Vec::new();
    for r in sql.fetch_all(db).await? {
        let outcome: String = r.try_get("outcome")?;
        let Ok(outcome) = Outcome::from_recorded(&outcome) else {
            tracing::warn!(outcome, "a rollup row with an unknown outcome is left out of a report");
            continue;
        };
        let requests: i64 = r.try_get("requests")?;
        let sum: i64 = r.try_get("latency_sum_us")?;
        let sketch: String = r.try_get("latency_sketch")?;
        let cell = keyledger_domain::usage::RollupCell::stored(requests.max(0) as u64, sum.max(0) as u64, &sketch)
            .map_err(|e| ProjectionError::Usage(format!("a stored rollup does not read back: {e}")))?;
        rows.push(keyledger_domain::usage::RollupRow {
            bucket: crate::sql::time(r.try_get("bucket_ms")?),
            key_id: r.try_get("key_id")?,
            endpoint_id: r.try_get("endpoint_id")?,
            plugin: r.try_get("plugin")?,
            outcome,
            status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
            cell,
        });
    }
    Ok(rows)
}

/// Whether the tenant (or anyone, with `None`) has any usage rolled up at all.
pub async fn any_usage(db: &Database, tenant: Option<&str>) -> Result<bool, ProjectionError> {
    let mut sql =
        Sql::new("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT 1 FROM usage_rollups WHERE period = 'day'");
    scoped(&mut sql, tenant);
    sql.push(" LIMIT 1) any_row");
    let rows = sql.fetch_all(db).await?;
    Ok(rows.first().map(|r| r.try_get::<i64, _>("n")).transpose()?.unwrap_or(0) > 0)
}
