//! `webhook_deliveries`, `webhook_attempts` and `webhook_health`: the dispatcher's durable queue,
//! what each attempt came to, and since when a subscription has been failing. The one module
//! that speaks to them.

mod attempts;
pub mod log;

pub(crate) use attempts::{record, Attempted};

use crate::ProjectionError;
use keyledger_commands::{Backend, Database};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// A transaction for the dispatcher's own writes. Its commits need not reach the disk before
/// they return (SQLite's `NORMAL` pool, PostgreSQL's `synchronous_commit = off`): a commit lost
/// to a power cut loses a match together with its checkpoint (matched again, to the same
/// delivery ids), a claim (taken again) or an attempt's record (the delivery is sent again,
/// under the same `webhook-id`). Deliveries are at least once either way, and a durable commit
/// per claim and per batch of attempts had SQLite's writer waiting on fsync most of the time.
pub(crate) async fn quick(db: &Database) -> Result<sqlx::Transaction<'static, sqlx::Any>, ProjectionError> {
    let mut tx = db.derived_pool().begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// `$from, $from+1, …` for `n` arguments.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

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
        let now = chunk.len() * 9 + 1;
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "({}, 0, {}, ${now}, ${now})",
                    placeholders(i * 9 + 1, 7),
                    placeholders(i * 9 + 8, 2)
                )
            })
            .collect();
        text.push_str(&rows.join(", "));
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

/// Whether any delivery is held.
pub(crate) async fn any_held(conn: &mut AnyConnection) -> Result<bool, ProjectionError> {
    let rows = sqlx::query("SELECT delivery_id FROM webhook_deliveries WHERE status = 'held' LIMIT 1")
        .fetch_all(&mut *conn)
        .await?;
    Ok(!rows.is_empty())
}

/// Releases every held delivery except those of the subscriptions `paused`, due now; how many.
/// Held deliveries belong to paused subscriptions only: one resumed while the sender was
/// holding its delivery, or deleted while paused, gets its deliveries back to the sender, which
/// sends them or fails them as its subscription now says.
pub(crate) async fn release_held_except(db: &Database, paused: &[String], now_ms: i64) -> Result<u64, ProjectionError> {
    let kept = if paused.is_empty() {
        String::new()
    } else {
        format!(" AND webhook_id NOT IN ({})", placeholders(2, paused.len()))
    };
    let text = format!(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_ms = $1, updated_at_ms = $1 \
         WHERE status = 'held'{kept}"
    );
    let mut query = sqlx::query(&text).bind(now_ms);
    for id in paused {
        query = query.bind(id.as_str());
    }
    let _turn = db.write_turn().await;
    let mut tx = quick(db).await?;
    let released = query.execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(released)
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
    // PostgreSQL: one statement, its own transaction, whose commit need not wait for the WAL
    // flush (see `quick`; set in the statement to cost no round trip of its own).
    let (lock, unsynced) = match db.backend() {
        Backend::Postgres => (
            " FOR UPDATE SKIP LOCKED",
            ", set_config('synchronous_commit', 'off', true) AS unsynced",
        ),
        Backend::Sqlite => ("", ""),
    };
    let text = format!(
        "UPDATE webhook_deliveries SET claimed_until_ms = $1 WHERE seq IN (SELECT seq FROM webhook_deliveries \
         WHERE status = 'pending' AND next_attempt_ms <= $2 AND (claimed_until_ms IS NULL OR claimed_until_ms < $2)\
         {busy_list} ORDER BY next_attempt_ms LIMIT $3{lock}) \
         RETURNING delivery_id, webhook_id, tenant, event_type, message, attempts{unsynced}"
    );
    let mut query = sqlx::query(&text).bind(now_ms + lease_ms).bind(now_ms).bind(limit);
    for id in busy {
        query = query.bind(*id);
    }
    let rows = match db.backend() {
        Backend::Postgres => query.fetch_all(db.pool()).await?,
        Backend::Sqlite => {
            let _turn = db.write_turn().await;
            let mut tx = quick(db).await?;
            let rows = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        }
    };
    rows.iter().map(claimed).collect()
}

/// Sets `assignments` on the deliveries `ids`, in one transaction.
async fn set_all(db: &Database, assignments: &str, ids: &[String]) -> Result<(), ProjectionError> {
    let _turn = db.write_turn().await;
    let mut tx = quick(db).await?;
    for chunk in ids.chunks(500) {
        let text = format!(
            "UPDATE webhook_deliveries SET {assignments} WHERE delivery_id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&text);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Gives back deliveries taken but not sent (their subscription had enough in flight).
pub(crate) async fn unclaim(db: &Database, ids: &[String]) -> Result<(), ProjectionError> {
    set_all(db, "claimed_until_ms = NULL", ids).await
}

/// Holds deliveries whose subscription was paused after they were queued, until it is resumed.
pub(crate) async fn hold(db: &Database, ids: &[String]) -> Result<(), ProjectionError> {
    set_all(
        db,
        "status = 'held', next_attempt_ms = NULL, claimed_until_ms = NULL",
        ids,
    )
    .await
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

/// The dispatcher's position in the log, read without a lock.
pub(crate) async fn checkpoint(conn: &mut AnyConnection) -> Result<i64, ProjectionError> {
    let row = sqlx::query("SELECT position FROM webhook_dispatch_checkpoint WHERE name = 'dispatcher'")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get("position")?)
}

pub(crate) async fn save_checkpoint(conn: &mut AnyConnection, position: i64) -> Result<(), ProjectionError> {
    sqlx::query("UPDATE webhook_dispatch_checkpoint SET position = $1 WHERE name = 'dispatcher'")
        .bind(position)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
