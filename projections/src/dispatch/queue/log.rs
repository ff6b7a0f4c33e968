//! The delivery log as admins read and steer it: deliveries with their attempts, figures over a
//! period, a delivery sent again, a subscription's failed deliveries recovered.

use crate::sql::{opt_time, page, parse_json, time, Page, Sql};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A delivery's states, as filters name them.
pub const STATUSES: [&str; 4] = ["pending", "held", "delivered", "failed"];

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub tenant: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// The message every attempt carries (`type`, `timestamp`, `tenant`, `data`).
    pub message: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub attempt: i64,
    pub url: String,
    pub delivered: bool,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub request_body: String,
    pub response_body: Option<String>,
    pub duration_ms: i64,
    pub at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub tenant: Option<String>,
    pub webhook_id: Option<String>,
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub limit: i64,
    pub cursor: Option<i64>,
}

const COLUMNS: &str = "seq, delivery_id, webhook_id, tenant, event_type, status, attempts, next_attempt_ms, \
     last_status_code, last_error, message, created_at_ms, updated_at_ms";

fn delivery_row(r: &AnyRow) -> Result<(i64, DeliveryRow), ProjectionError> {
    Ok((
        r.try_get("seq")?,
        DeliveryRow {
            id: r.try_get("delivery_id")?,
            webhook_id: r.try_get("webhook_id")?,
            tenant: r.try_get("tenant")?,
            event_type: r.try_get("event_type")?,
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
            next_attempt_at: opt_time(r.try_get("next_attempt_ms")?),
            last_status_code: r.try_get("last_status_code")?,
            last_error: r.try_get("last_error")?,
            message: parse_json(&r.try_get::<String, _>("message")?, "message")?,
            created_at: time(r.try_get("created_at_ms")?),
            updated_at: time(r.try_get("updated_at_ms")?),
        },
    ))
}

/// Deliveries, newest first.
pub async fn list_deliveries(db: &Database, f: &DeliveryFilter) -> Result<Page<DeliveryRow>, ProjectionError> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE 1 = 1"));
    if let Some(tenant) = &f.tenant {
        sql.push(" AND tenant = ").bind_text(tenant.as_str());
    }
    if let Some(webhook_id) = &f.webhook_id {
        sql.push(" AND webhook_id = ").bind_text(webhook_id.as_str());
    }
    if let Some(status) = &f.status {
        sql.push(" AND status = ").bind_text(status.as_str());
    }
    if let Some(event_type) = &f.event_type {
        sql.push(" AND event_type = ").bind_text(event_type.as_str());
    }
    if let Some(cursor) = f.cursor {
        sql.push(" AND seq < ").bind_int(cursor);
    }
    sql.push(" ORDER BY seq DESC LIMIT ").bind_int(f.limit + 1);
    let rows = sql.fetch_all(db).await?;
    let rows = rows.iter().map(delivery_row).collect::<Result<Vec<_>, _>>()?;
    Ok(page(rows, f.limit))
}

pub async fn get_delivery(db: &Database, id: &str) -> Result<Option<DeliveryRow>, ProjectionError> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE delivery_id = "
    ));
    sql.bind_text(id);
    let rows = sql.fetch_all(db).await?;
    rows.first().map(delivery_row).transpose().map(|r| r.map(|(_, d)| d))
}

/// A delivery's attempts, first first.
pub async fn attempts(db: &Database, id: &str) -> Result<Vec<AttemptRow>, ProjectionError> {
    let rows = sqlx::query(
        "SELECT attempt, url, delivered, status_code, error, request_body, response_body, duration_ms, at_ms, \
         next_attempt_ms FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AttemptRow {
                attempt: r.try_get("attempt")?,
                url: r.try_get("url")?,
                delivered: r.try_get::<i64, _>("delivered")? == 1,
                status_code: r.try_get("status_code")?,
                error: r.try_get("error")?,
                request_body: r.try_get("request_body")?,
                response_body: r.try_get("response_body")?,
                duration_ms: r.try_get("duration_ms")?,
                at: time(r.try_get("at_ms")?),
                next_attempt_at: opt_time(r.try_get("next_attempt_ms")?),
            })
        })
        .collect()
}

/// Sends a delivered or failed delivery again, now; `false` when it is still pending or held.
pub async fn resend(db: &Database, id: &str, now_ms: i64) -> Result<bool, ProjectionError> {
    let _turn = db.write_turn().await;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_ms = $1, updated_at_ms = $1 \
         WHERE delivery_id = $2 AND status IN ('delivered', 'failed')",
    )
    .bind(now_ms)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sends again, now, every failed delivery of `webhook_id` made since `since_ms`; how many.
pub async fn recover(db: &Database, webhook_id: &str, since_ms: i64, now_ms: i64) -> Result<u64, ProjectionError> {
    let _turn = db.write_turn().await;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_ms = $1, updated_at_ms = $1 \
         WHERE webhook_id = $2 AND status = 'failed' AND created_at_ms >= $3",
    )
    .bind(now_ms)
    .bind(webhook_id)
    .bind(since_ms)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Figures of the deliveries made and attempts sent since a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryStats {
    pub deliveries: i64,
    pub delivered: i64,
    pub failed: i64,
    pub pending: i64,
    pub attempts: i64,
    pub avg_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<i64>,
}

/// Figures since `since_ms` of `tenant`'s deliveries (all when `None`), or one subscription's.
pub async fn stats(
    db: &Database,
    tenant: Option<&str>,
    webhook_id: Option<&str>,
    since_ms: i64,
) -> Result<DeliveryStats, ProjectionError> {
    let scope = |sql: &mut Sql| {
        if let Some(tenant) = tenant {
            sql.push(" AND tenant = ").bind_text(tenant);
        }
        if let Some(webhook_id) = webhook_id {
            sql.push(" AND webhook_id = ").bind_text(webhook_id);
        }
    };
    let mut sql = Sql::new(
        "SELECT CAST(COUNT(*) AS BIGINT) AS deliveries, \
         CAST(COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS BIGINT) AS delivered, \
         CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed \
         FROM webhook_deliveries WHERE created_at_ms >= ",
    );
    sql.bind_int(since_ms);
    scope(&mut sql);
    let rows = sql.fetch_all(db).await?;
    let mut stats = DeliveryStats::default();
    if let Some(r) = rows.first() {
        stats.deliveries = r.try_get("deliveries")?;
        stats.delivered = r.try_get("delivered")?;
        stats.failed = r.try_get("failed")?;
        stats.pending = stats.deliveries - stats.delivered - stats.failed;
    }
    let mut sql = Sql::new(
        "SELECT CAST(COUNT(*) AS BIGINT) AS attempts, CAST(AVG(duration_ms) AS DOUBLE PRECISION) AS avg_ms \
         FROM webhook_attempts WHERE at_ms >= ",
    );
    sql.bind_int(since_ms);
    scope(&mut sql);
    let rows = sql.fetch_all(db).await?;
    if let Some(r) = rows.first() {
        stats.attempts = r.try_get("attempts")?;
        stats.avg_duration_ms = r.try_get("avg_ms")?;
    }
    if stats.attempts > 0 {
        // The attempt 95 % of attempts were as fast as or faster than.
        let rank = ((stats.attempts as f64) * 0.95).ceil() as i64 - 1;
        let mut sql = Sql::new("SELECT duration_ms FROM webhook_attempts WHERE at_ms >= ");
        sql.bind_int(since_ms);
        scope(&mut sql);
        sql.push(" ORDER BY duration_ms LIMIT 1 OFFSET ").bind_int(rank.max(0));
        let rows = sql.fetch_all(db).await?;
        stats.p95_duration_ms = rows.first().map(|r| r.try_get("duration_ms")).transpose()?;
    }
    Ok(stats)
}

/// Finished deliveries removed per transaction, with their attempts.
const FORGET_STEP: i64 = 1_000;

/// Deletes delivered and failed deliveries last changed before `horizon_ms`, and their attempts,
/// a step at a time; how many deliveries.
pub async fn forget_before(db: &Database, horizon_ms: i64) -> Result<u64, ProjectionError> {
    let mut forgotten = 0;
    loop {
        let _turn = db.write_turn().await;
        let mut tx = super::quick(db).await?;
        let old: Vec<String> = sqlx::query(
            "SELECT delivery_id FROM webhook_deliveries WHERE status IN ('delivered', 'failed') \
             AND updated_at_ms < $1 LIMIT $2",
        )
        .bind(horizon_ms)
        .bind(FORGET_STEP)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("delivery_id"))
        .collect::<Result<_, _>>()?;
        if old.is_empty() {
            return Ok(forgotten);
        }
        // The conditions again: a delivery resent since it was read stays, with its attempts.
        let text = format!(
            "DELETE FROM webhook_deliveries WHERE delivery_id IN ({}) AND status IN ('delivered', 'failed') \
             AND updated_at_ms < ${} RETURNING delivery_id",
            super::placeholders(1, old.len()),
            old.len() + 1
        );
        let mut query = sqlx::query(&text);
        for id in &old {
            query = query.bind(id.as_str());
        }
        let gone: Vec<String> = query
            .bind(horizon_ms)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("delivery_id"))
            .collect::<Result<_, _>>()?;
        crate::rows::delete_where_in(&mut tx, "webhook_attempts", "delivery_id", &gone).await?;
        tx.commit().await?;
        forgotten += gone.len() as u64;
        if (old.len() as i64) < FORGET_STEP {
            return Ok(forgotten);
        }
    }
}
