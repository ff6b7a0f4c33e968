//! Figures read from the rollups: sums over buckets, never a scan of the raw log, each from the
//! coarsest grain that holds it.

use crate::sql::Sql;
use crate::usage::filtered;
use crate::ProjectionError;
use chrono::{DateTime, Duration, Utc};
use keyledger_commands::Database;
use keyledger_domain::usage::{
    Grain, Outcome, PartSum, Period, Range, Report, ReportRows, RollupCell, RollupRow, StatusClass, UsageFilter,
};
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

fn scoped(sql: &mut Sql, tenant: Option<&str>, tenants: &Tenants) {
    if let Some(tenant) = tenant {
        sql.push(" AND tenant = ").bind_text(tenant);
    }
    tenants.push(sql);
}

async fn totals(
    db: &Database,
    (tenant, tenants): (Option<&str>, &Tenants),
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
    scoped(&mut sql, tenant, tenants);
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
    let only = UsageFilter {
        tenant: tenant.map(str::to_owned),
        ..Default::default()
    };
    let tenants = Tenants::of(db, &only).await?;
    let today = totals(db, (tenant, &tenants), Period::Day, Period::Day.bucket(now)).await?;
    let week_from = Period::Hour.bucket(now) - Duration::hours(7 * 24 - 1);
    let last_7_days = totals(db, (tenant, &tenants), Period::Hour, week_from).await?;
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
    scoped(&mut sql, tenant, &tenants);
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

/// What a report's queries share: its period, its filter and the tenants that filter covers.
#[derive(Debug, Clone)]
pub struct Scope {
    pub period: Period,
    pub filter: UsageFilter,
    tenants: Tenants,
}

/// Rows of a period from a time until before another.
type Span = (Period, DateTime<Utc>, DateTime<Utc>);

impl Scope {
    /// A range as the rows that sum it: per day, whole weeks as weeks.
    fn spans(&self, (from, until): (DateTime<Utc>, DateTime<Utc>)) -> Vec<Span> {
        match self.period {
            Period::Day => Period::days_and_weeks(from, until),
            period => vec![(period, from, until)],
        }
    }

    pub async fn new(db: &Database, period: Period, filter: UsageFilter) -> Result<Self, ProjectionError> {
        let tenants = Tenants::of(db, &filter).await?;
        Ok(Scope {
            period,
            filter,
            tenants,
        })
    }

    /// `select` from the rows of `grain` and `period` in the scope from `from` until before
    /// `until`.
    fn select(&self, select: &str, grain: Grain, (period, from, until): Span) -> Sql {
        let mut sql = Sql::new(&format!("{select} FROM usage_rollups WHERE grain = "));
        sql.bind_text(grain.as_str())
            .push(" AND period = ")
            .bind_text(period.as_str())
            .push(" AND bucket_ms >= ")
            .bind_int(from.timestamp_millis())
            .push(" AND bucket_ms < ")
            .bind_int(until.timestamp_millis());
        filtered(&mut sql, &self.filter);
        self.tenants.push(&mut sql);
        sql
    }
}

/// The tenants a query covers when the filter names none: every tenant with usage, listed once
/// for all the queries of a report. The rows' key leads with the grain, period and tenant, so a
/// list of tenants is a seek for each, where no tenant is a scan of every bucket ever kept.
#[derive(Debug, Clone, Default)]
pub struct Tenants(Option<Vec<String>>);

impl Tenants {
    pub async fn of(db: &Database, f: &UsageFilter) -> Result<Self, ProjectionError> {
        if f.tenant.is_some() {
            return Ok(Tenants(None));
        }
        let all: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT tenant FROM usage_rollups WHERE grain = 'tenant' AND period = 'day'")
                .fetch_all(db.pool())
                .await?;
        Ok(Tenants(Some(all)))
    }

    pub(crate) fn push(&self, sql: &mut Sql) {
        let Some(all) = &self.0 else { return };
        if all.is_empty() {
            sql.push(" AND 1 = 0");
            return;
        }
        sql.push(" AND tenant IN (");
        for (i, tenant) in all.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind_text(tenant.as_str());
        }
        sql.push(")");
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

/// The rows of `grain` and the scope's period from `from` until before `until`, filtered, with
/// their sketches.
pub async fn rows(
    db: &Database,
    scope: &Scope,
    grain: Grain,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<RollupRow>, ProjectionError> {
    rows_of(db, scope, grain, (scope.period, from, until), None).await
}

/// The rows of `grain` over `range`, filtered, with their sketches, whole weeks of days as weeks
/// (their buckets are then weeks'); with `endpoints`, only theirs.
pub async fn sketched(
    db: &Database,
    scope: &Scope,
    grain: Grain,
    range: (DateTime<Utc>, DateTime<Utc>),
    endpoints: Option<&[String]>,
) -> Result<Vec<RollupRow>, ProjectionError> {
    let mut rows = Vec::new();
    for span in scope.spans(range) {
        rows.extend(rows_of(db, scope, grain, span, endpoints).await?);
    }
    Ok(rows)
}

async fn rows_of(
    db: &Database,
    scope: &Scope,
    grain: Grain,
    range: Span,
    endpoints: Option<&[String]>,
) -> Result<Vec<RollupRow>, ProjectionError> {
    let mut sql = scope.select(
        "SELECT bucket_ms, key_id, endpoint_id, plugin, outcome, status, requests, latency_sum_us, latency_sketch",
        grain,
        range,
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

/// The requests of `grain` summed by the database over the whole range per `parts` (columns
/// of the grain: `key_id`, or `endpoint_id` and `plugin`), filtered; a part may come once per
/// span of the range.
pub async fn sums(
    db: &Database,
    scope: &Scope,
    grain: Grain,
    range: (DateTime<Utc>, DateTime<Utc>),
    parts: &[&str],
) -> Result<Vec<PartSum>, ProjectionError> {
    let mut sums = Vec::new();
    for span in scope.spans(range) {
        sums.extend(sums_of(db, scope, grain, span, parts).await?);
    }
    Ok(sums)
}

async fn sums_of(
    db: &Database,
    scope: &Scope,
    grain: Grain,
    range: Span,
    parts: &[&str],
) -> Result<Vec<PartSum>, ProjectionError> {
    let (low, high) = StatusClass::ERRORS;
    let by = parts.join(", ");
    let mut sql = scope.select(
        &format!(
            "SELECT {by}, CAST(SUM(requests) AS BIGINT) AS requests, \
             CAST(SUM(CASE WHEN status BETWEEN {low} AND {high} THEN requests ELSE 0 END) AS BIGINT) AS errors, \
             CAST(SUM(latency_sum_us) AS BIGINT) AS latency"
        ),
        grain,
        range,
    );
    sql.push(&format!(" GROUP BY {by}"));
    let part = |r: &sqlx::any::AnyRow, column: &str| -> Result<String, ProjectionError> {
        Ok(if parts.contains(&column) {
            r.try_get(column)?
        } else {
            String::new()
        })
    };
    let count = |r: &sqlx::any::AnyRow, column: &str| -> Result<u64, ProjectionError> {
        Ok(r.try_get::<i64, _>(column)?.max(0) as u64)
    };
    let mut sums = Vec::new();
    for r in sql.fetch_all(db).await? {
        sums.push(PartSum {
            key_id: part(&r, "key_id")?,
            endpoint_id: part(&r, "endpoint_id")?,
            plugin: part(&r, "plugin")?,
            requests: count(&r, "requests")?,
            errors: count(&r, "errors")?,
            latency_sum_us: count(&r, "latency")?,
        });
    }
    Ok(sums)
}

/// A range's report over `buckets` of `period` (until before `until`), filtered: the totals
/// and series from the grain the filter needs, the endpoints and keys summed by the database at
/// theirs, and the percentiles of the `top` busiest endpoints from their sketches.
pub async fn report(
    db: &Database,
    scope: &Scope,
    buckets: &[DateTime<Utc>],
    until: DateTime<Utc>,
    top: usize,
) -> Result<Report, ProjectionError> {
    let f = &scope.filter;
    let range = (buckets.first().copied().unwrap_or(until), until);
    let overall = rows(db, scope, Grain::answering(f, false, false), range).await?;
    let by_endpoint = Grain::answering(f, false, true);
    let endpoints = sums(db, scope, by_endpoint, range, &["endpoint_id", "plugin"]).await?;
    let keys = sums(db, scope, Grain::answering(f, true, false), range, &["key_id"]).await?;
    let mut report = Report::of_rows(
        ReportRows {
            overall: &overall,
            endpoints: &endpoints,
            keys: &keys,
        },
        buckets,
    );
    let busiest: Vec<String> = report.endpoints.iter().take(top).map(|(id, _, _)| id.clone()).collect();
    report.with_endpoint_latency(&sketched(db, scope, by_endpoint, range, Some(&busiest)).await?);
    Ok(report)
}

/// The errors of a range (`from` until before `until`), filtered, as a report of its totals,
/// outcomes and status codes (for the trend against it).
pub async fn totals_of(
    db: &Database,
    scope: &Scope,
    range: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Report, ProjectionError> {
    let overall = rows(db, scope, Grain::answering(&scope.filter, false, false), range).await?;
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
    scoped(&mut sql, tenant, &Tenants::default());
    sql.push(" LIMIT 1) any_row");
    let rows = sql.fetch_all(db).await?;
    Ok(rows.first().map(|r| r.try_get::<i64, _>("n")).transpose()?.unwrap_or(0) > 0)
}
