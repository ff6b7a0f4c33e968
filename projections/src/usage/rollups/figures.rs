//! Figures read from the rollups: sums over buckets, never a scan of the raw log, each from the
//! coarsest grain that holds it.

use crate::sql::Sql;
use crate::usage::filtered;
use crate::ProjectionError;
use chrono::{DateTime, Duration, Utc};
use keyledger_commands::Database;
use keyledger_domain::usage::{Grain, Outcome, Period, Range, Report, ReportRows, RollupCell, RollupRow, UsageFilter};
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
    match tenant {
        Some(tenant) => {
            sql.push(" AND tenant = ").bind_text(tenant);
        }
        None => every_tenant(sql, &UsageFilter::default()),
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
        .push(" THEN requests ELSE 0 END), 0) AS BIGINT) AS limited FROM usage_rollups WHERE grain = ")
        .bind_text(Grain::Tenant.as_str())
        .push(" AND period = ")
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
        Sql::new("SELECT bucket_ms, CAST(SUM(requests) AS BIGINT) AS requests FROM usage_rollups WHERE grain = ");
    sql.bind_text(Grain::Tenant.as_str())
        .push(" AND period = ")
        .bind_text(Period::Hour.as_str())
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

/// Where `WHERE` starts for rows of `grain` and `period` from `from` until before `until`, filtered.
fn within(
    select: &str,
    grain: Grain,
    period: Period,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    f: &UsageFilter,
) -> Sql {
    let mut sql = Sql::new(&format!("{select} FROM usage_rollups WHERE grain = "));
    sql.bind_text(grain.as_str())
        .push(" AND period = ")
        .bind_text(period.as_str())
        .push(" AND bucket_ms >= ")
        .bind_int(from.timestamp_millis())
        .push(" AND bucket_ms < ")
        .bind_int(until.timestamp_millis());
    filtered(&mut sql, f);
    every_tenant(&mut sql, f);
    sql
}

/// With no tenant named, names every tenant with usage: the rows' key leads with the grain,
/// period and tenant, so a list of tenants is a seek for each, where no tenant is a scan of
/// every bucket ever kept.
pub(crate) fn every_tenant(sql: &mut Sql, f: &UsageFilter) {
    if f.tenant.is_none() {
        sql.push(
            " AND tenant IN (SELECT DISTINCT tenant FROM usage_rollups WHERE grain = 'tenant' AND period = 'day')",
        );
    }
}

fn row(r: &sqlx::any::AnyRow, bucket: DateTime<Utc>, cell: RollupCell) -> Result<Option<RollupRow>, ProjectionError> {
    let outcome: String = r.try_get("outcome")?;
    let Ok(outcome) = Outcome::from_recorded(&outcome) else {
        tracing::warn!(outcome, "a rollup row with an unknown outcome is left out of a report");
        return Ok(None);
    };
    Ok(Some(RollupRow {
        bucket,
        key_id: r.try_get("key_id")?,
        endpoint_id: r.try_get("endpoint_id")?,
        plugin: r.try_get("plugin")?,
        outcome,
        status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
        cell,
    }))
}

/// The rows of `grain` and `period` from `from` until before `until`, filtered, with their
/// sketches; with `endpoints`, only theirs.
pub async fn rows(
    db: &Database,
    grain: Grain,
    period: Period,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
    f: &UsageFilter,
    endpoints: Option<&[String]>,
) -> Result<Vec<RollupRow>, ProjectionError> {
    let mut sql = within(
        "SELECT bucket_ms, key_id, endpoint_id, plugin, outcome, status, requests, latency_sum_us, latency_sketch",
        grain,
        period,
        from,
        until,
        f,
    );
    if let Some(endpoints) = endpoints {
        if endpoints.is_empty() {
            return Ok(Vec::new());
        }
        sql.push(" AND endpoint_id IN (");
        for (i, id) in endpoints.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind_text(id.as_str());
        }
        sql.push(")");
    }
    let mut rows = Vec::new();
    for r in sql.fetch_all(db).await? {
        let requests: i64 = r.try_get("requests")?;
        let sum: i64 = r.try_get("latency_sum_us")?;
        let sketch: String = r.try_get("latency_sketch")?;
        let cell = RollupCell::stored(requests.max(0) as u64, sum.max(0) as u64, &sketch)
            .map_err(|e| ProjectionError::Usage(format!("a stored rollup does not read back: {e}")))?;
        rows.extend(row(&r, crate::sql::time(r.try_get("bucket_ms")?), cell)?);
    }
    Ok(rows)
}

/// The rows of `grain` summed by the database over the whole range, per the grain's parts,
/// outcome and status: counts without sketches, all at bucket `from`.
pub async fn sums(
    db: &Database,
    grain: Grain,
    period: Period,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
    f: &UsageFilter,
) -> Result<Vec<RollupRow>, ProjectionError> {
    const PARTS: &str = "key_id, endpoint_id, plugin, outcome, status";
    let mut sql = within(
        &format!(
            "SELECT {PARTS}, CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(latency_sum_us) AS BIGINT) AS latency"
        ),
        grain,
        period,
        from,
        until,
        f,
    );
    sql.push(&format!(" GROUP BY {PARTS}"));
    let mut rows = Vec::new();
    for r in sql.fetch_all(db).await? {
        let requests: i64 = r.try_get("requests")?;
        let sum: i64 = r.try_get("latency")?;
        rows.extend(row(
            &r,
            from,
            RollupCell::counted(requests.max(0) as u64, sum.max(0) as u64),
        )?);
    }
    Ok(rows)
}

/// A range's report over `buckets` of `period` (until before `until`), filtered: the totals
/// and series from the grain the filter needs, the endpoints and keys summed by the database at
/// theirs, and the percentiles of the `top` busiest endpoints from their sketches.
pub async fn report(
    db: &Database,
    period: Period,
    buckets: &[DateTime<Utc>],
    until: DateTime<Utc>,
    f: &UsageFilter,
    top: usize,
) -> Result<Report, ProjectionError> {
    let range = (buckets.first().copied().unwrap_or(until), until);
    let overall = rows(db, Grain::answering(f, false, false), period, range, f, None).await?;
    let by_endpoint = Grain::answering(f, false, true);
    let endpoints = sums(db, by_endpoint, period, range, f).await?;
    let keys = sums(db, Grain::answering(f, true, false), period, range, f).await?;
    let mut report = Report::of_rows(
        ReportRows {
            overall: &overall,
            endpoints: &endpoints,
            keys: &keys,
        },
        buckets,
    );
    let busiest: Vec<String> = report.endpoints.iter().take(top).map(|(id, _, _)| id.clone()).collect();
    report.with_endpoint_latency(&rows(db, by_endpoint, period, range, f, Some(&busiest)).await?);
    Ok(report)
}

/// The errors of a range (`from` until before `until`), filtered, as a report of its totals,
/// outcomes and status codes (for the trend against it).
pub async fn totals_of(
    db: &Database,
    period: Period,
    range: (DateTime<Utc>, DateTime<Utc>),
    f: &UsageFilter,
) -> Result<Report, ProjectionError> {
    let overall = sums(db, Grain::answering(f, false, false), period, range, f).await?;
    Ok(Report::of_rows(
        ReportRows {
            overall: &overall,
            endpoints: &[],
            keys: &[],
        },
        &[],
    ))
}

/// Whether the tenant (or anyone, with `None`) has any usage rolled up at all.
pub async fn any_usage(db: &Database, tenant: Option<&str>) -> Result<bool, ProjectionError> {
    let mut sql = Sql::new(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT 1 FROM usage_rollups WHERE grain = 'tenant' AND period = 'day'",
    );
    scoped(&mut sql, tenant);
    sql.push(" LIMIT 1) any_row");
    let rows = sql.fetch_all(db).await?;
    Ok(rows.first().map(|r| r.try_get::<i64, _>("n")).transpose()?.unwrap_or(0) > 0)
}
