//! `webhook_deliveries`, `webhook_attempts` and `webhook_health`: the dispatcher's durable queue,
//! what each attempt came to, and since when a subscription has been failing. The one module
//! that speaks to them.

pub mod log;

use crate::ProjectionError;
use keyledger_commands::{Backend, Database};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// A delivery the dispatcher matched: an event for one subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub webhook_id: String,
    pub tenant: String,
    pub event_type: &'static str,
    pub event_position: i64,
    /// The message's JSON (`type`, `timestamp`, `tenant`, `data`).
    pub message: String,
    /// `pending`, or `held` while its subscription is paused, or `failed` (with why) when the
    /// subscription is disabled: recoverable once it is enabled again.
    pub status: &'static str,
    pub error: Option<&'static str>,
}

/// Rows per INSERT: well inside both backends' limits on arguments.
const INSERT_ROWS: usize = 500;

pub(crate) async fn insert(conn: &mut AnyConnection, rows: &[NewDelivery], now_ms: i64) -> Result<(), ProjectionError> {
    for chunk in rows.chunks(INSERT_ROWS) {
        let mut text = String::from(
            "INSERT INTO webhook_deliveries (delivery_id, webhook_id, tenant, event_type, event_position, message, \
             status, attempts, next_attempt_ms, last_error, created_at_ms, updated_at_ms) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 9;
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, 0, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                chunk.len() * 9 + 1,
                chunk.len() * 9 + 1
            ));
        }
        // A delivery's id is derived from its event and subscription: matching the same event
        // again (after a lost commit) finds it already queued.
        text.push_str(" ON CONFLICT (delivery_id) DO NOTHING");
        let mut query = sqlx::query(&text);
        for row in chunk {
            let due = (row.status == "pending").then_some(now_ms);
            query = query
                .bind(row.delivery_id.as_str())
                .bind(row.webhook_id.as_str())
                .bind(row.tenant.as_str())
                .bind(row.event_type)
                .bind(row.event_position)
                .bind(row.message.as_str())
                .bind(row.status)
                .bind(due)
                .bind(row.error);
        }
        query.bind(now_ms).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deliveries held while `webhook_id` was paused are due now that it is resumed.
pub(crate) async fn release_held(
    conn: &mut AnyConnection,
    webhook_id: &str,
    now_ms: i64,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_ms = $1, updated_at_ms = $1 \
         WHERE webhook_id = $2 AND status = 'held'",
    )
    .bind(now_ms)
    .bind(webhook_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deliveries held for subscriptions that are active again, due now: a safety net for a
/// subscription resumed while the sender was holding one of its deliveries.
pub(crate) async fn release_held_of(db: &Database, active: &[String], now_ms: i64) -> Result<(), ProjectionError> {
    let _turn = db.write_turn().await;
    let mut conn = db.pool().acquire().await?;
    for chunk in active.chunks(500) {
        let list = (2..chunk.len() + 2)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_ms = $1, updated_at_ms = $1 \
             WHERE status = 'held' AND webhook_id IN ({list})"
        );
        let mut query = sqlx::query(&text).bind(now_ms);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A delivery a node took to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub delivery_id: String,
    pub webhook_id: String,
    pub tenant: String,
    pub event_type: String,
    pub message: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

fn claimed(r: &AnyRow) -> Result<Claimed, ProjectionError> {
    Ok(Claimed {
        delivery_id: r.try_get("delivery_id")?,
        webhook_id: r.try_get("webhook_id")?,
        tenant: r.try_get("tenant")?,
        event_type: r.try_get("event_type")?,
        message: r.try_get("message")?,
        attempts: r.try_get::<i64, _>("attempts")?.try_into().unwrap_or(0),
    })
}

/// Takes up to `limit` deliveries due at `now_ms` for `lease_ms`, oldest due first, except those
/// of the subscriptions in `busy`; on PostgreSQL rows other nodes are taking are skipped, not
/// waited for. A node that dies holding some leaves them to be taken again when the lease ends.
pub(crate) async fn claim(
    db: &Database,
    now_ms: i64,
    lease_ms: i64,
    limit: i64,
    busy: &[&str],
) -> Result<Vec<Claimed>, ProjectionError> {
    let mut busy_list = String::new();
    for i in 0..busy.len() {
        busy_list.push_str(if i == 0 { " AND webhook_id NOT IN (" } else { ", " });
        busy_list.push_str(&format!("${}", i + 4));
    }
    if !busy.is_empty() {
        busy_list.push(')');
    }
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let text = format!(
        "UPDATE webhook_deliveries SET claimed_until_ms = $1 WHERE seq IN (SELECT seq FROM webhook_deliveries \
         WHERE status = 'pending' AND next_attempt_ms <= $2 AND (claimed_until_ms IS NULL OR claimed_until_ms < $2)\
         {busy_list} ORDER BY next_attempt_ms LIMIT $3{lock}) \
         RETURNING delivery_id, webhook_id, tenant, event_type, message, attempts"
    );
    let mut query = sqlx::query(&text).bind(now_ms + lease_ms).bind(now_ms).bind(limit);
    for id in busy {
        query = query.bind(*id);
    }
    let _turn = db.write_turn().await;
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter().map(claimed).collect()
}

/// Gives back deliveries taken but not sent (their subscription had enough in flight).
pub(crate) async fn unclaim(db: &Database, ids: &[String]) -> Result<(), ProjectionError> {
    let _turn = db.write_turn().await;
    for id in ids {
        sqlx::query("UPDATE webhook_deliveries SET claimed_until_ms = NULL WHERE delivery_id = $1")
            .bind(id.as_str())
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

/// Holds deliveries whose subscription was paused after they were queued, until it is resumed.
pub(crate) async fn hold(db: &Database, ids: &[String]) -> Result<(), ProjectionError> {
    let _turn = db.write_turn().await;
    for id in ids {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'held', next_attempt_ms = NULL, claimed_until_ms = NULL \
             WHERE delivery_id = $1",
        )
        .bind(id.as_str())
        .execute(db.pool())
        .await?;
    }
    Ok(())
}

/// What one attempt came to, and what the delivery is now.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempted {
    pub delivery_id: String,
    pub webhook_id: String,
    pub tenant: String,
    pub event_type: String,
    /// 1 for the first.
    pub attempt: u32,
    pub url: String,
    pub delivered: bool,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub request_body: String,
    pub response_body: Option<String>,
    pub duration_ms: i64,
    pub at_ms: i64,
    /// When the next attempt is due; `None` when there is none.
    pub next_attempt_ms: Option<i64>,
    /// No attempt was made (the subscription was deleted or disabled): only the delivery's
    /// status changes.
    pub skipped: bool,
}

impl Attempted {
    fn status(&self) -> &'static str {
        match (self.delivered, self.next_attempt_ms) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        }
    }
}

/// Records a batch of attempts in one transaction: the attempts, the deliveries' new state, and
/// each subscription's health by its latest attempt. Returns since when each subscription that
/// failed its latest attempt has been failing.
pub(crate) async fn record(db: &Database, attempts: &[Attempted]) -> Result<HashMap<String, i64>, ProjectionError> {
    let _turn = db.write_turn().await;
    let mut tx = db.pool().begin().await?;
    for a in attempts {
        if !a.skipped {
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt, webhook_id, tenant, event_type, url, delivered, \
                 status_code, error, request_body, response_body, duration_ms, at_ms, next_attempt_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (delivery_id, attempt) DO NOTHING",
            )
            .bind(a.delivery_id.as_str())
            .bind(i64::from(a.attempt))
            .bind(a.webhook_id.as_str())
            .bind(a.tenant.as_str())
            .bind(a.event_type.as_str())
            .bind(a.url.as_str())
            .bind(i64::from(a.delivered))
            .bind(a.status_code.map(i64::from))
            .bind(a.error.as_deref())
            .bind(a.request_body.as_str())
            .bind(a.response_body.as_deref())
            .bind(a.duration_ms)
            .bind(a.at_ms)
            .bind(a.next_attempt_ms)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = CASE WHEN $2 > attempts THEN $2 ELSE attempts END, \
             next_attempt_ms = $3, claimed_until_ms = NULL, last_status_code = $4, last_error = $5, \
             updated_at_ms = $6 WHERE delivery_id = $7",
        )
        .bind(a.status())
        .bind(i64::from(if a.skipped { 0 } else { a.attempt }))
        .bind(a.next_attempt_ms)
        .bind(a.status_code.map(i64::from))
        .bind(a.error.as_deref())
        .bind(a.at_ms)
        .bind(a.delivery_id.as_str())
        .execute(&mut *tx)
        .await?;
    }
    let mut latest: HashMap<&str, &Attempted> = HashMap::new();
    for a in attempts.iter().filter(|a| !a.skipped) {
        let entry = latest.entry(a.webhook_id.as_str()).or_insert(a);
        if a.at_ms >= entry.at_ms {
            *entry = a;
        }
    }
    let mut failing = HashMap::new();
    for (webhook_id, a) in latest {
        if a.delivered {
            sqlx::query("DELETE FROM webhook_health WHERE webhook_id = $1")
                .bind(webhook_id)
                .execute(&mut *tx)
                .await?;
            continue;
        }
        sqlx::query(
            "INSERT INTO webhook_health (webhook_id, failing_since_ms) VALUES ($1, $2) \
             ON CONFLICT (webhook_id) DO NOTHING",
        )
        .bind(webhook_id)
        .bind(a.at_ms)
        .execute(&mut *tx)
        .await?;
        let since: i64 = sqlx::query("SELECT failing_since_ms FROM webhook_health WHERE webhook_id = $1")
            .bind(webhook_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("failing_since_ms")?;
        failing.insert(webhook_id.to_owned(), since);
    }
    tx.commit().await?;
    Ok(failing)
}

/// A disabled subscription starts afresh when enabled: its failures so far no longer count.
pub(crate) async fn forget_health(conn: &mut AnyConnection, webhook_id: &str) -> Result<(), ProjectionError> {
    sqlx::query("DELETE FROM webhook_health WHERE webhook_id = $1")
        .bind(webhook_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The dispatcher's position in the log, locked for this transaction; `None` when another
/// node holds it (PostgreSQL).
pub(crate) async fn lock_checkpoint(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<Option<i64>, ProjectionError> {
    let text = match backend {
        Backend::Postgres => {
            "SELECT position FROM webhook_dispatch_checkpoint WHERE name = 'dispatcher' FOR UPDATE SKIP LOCKED"
        }
        // Writing first takes SQLite's write lock up front.
        Backend::Sqlite => {
            "UPDATE webhook_dispatch_checkpoint SET position = position WHERE name = 'dispatcher' RETURNING position"
        }
    };
    let row = sqlx::query(text).fetch_optional(&mut *conn).await?;
    Ok(row.map(|r| r.try_get("position")).transpose()?)
}

pub(crate) async fn save_checkpoint(conn: &mut AnyConnection, position: i64) -> Result<(), ProjectionError> {
    sqlx::query("UPDATE webhook_dispatch_checkpoint SET position = $1 WHERE name = 'dispatcher'")
        .bind(position)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
