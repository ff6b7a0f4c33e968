//! `webhook_attempts`, and what each attempt makes of its delivery and its subscription's
//! health: written in batches, a statement for many rows where the backend allows.

use super::{placeholders, quick};
use crate::ProjectionError;
use keyledger_commands::{Backend, Database};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// Attempts per INSERT (14 arguments each): well inside both backends' limits.
const ROWS: usize = 200;

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
    /// Nothing was sent because of a fault on this side (a template or a secret that cannot be
    /// used): logged and retried, but not held against the receiver's health.
    pub unsent: bool,
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
    let mut tx = quick(db).await?;
    let made: Vec<&Attempted> = attempts.iter().filter(|a| !a.skipped).collect();
    for chunk in made.chunks(ROWS) {
        insert(&mut tx, chunk).await?;
    }
    match db.backend() {
        Backend::Postgres => {
            for chunk in attempts.chunks(ROWS) {
                update_many(&mut tx, chunk).await?;
            }
        }
        // In-process statements cost little each.
        Backend::Sqlite => {
            for a in attempts {
                update_one(&mut tx, a).await?;
            }
        }
    }
    let sent: Vec<&Attempted> = made.iter().copied().filter(|a| !a.unsent).collect();
    let failing = health(&mut tx, &sent).await?;
    tx.commit().await?;
    Ok(failing)
}

async fn insert(tx: &mut Transaction<'static, Any>, chunk: &[&Attempted]) -> Result<(), ProjectionError> {
    let rows: Vec<String> = (0..chunk.len())
        .map(|i| format!("({})", placeholders(i * 14 + 1, 14)))
        .collect();
    let text = format!(
        "INSERT INTO webhook_attempts (delivery_id, attempt, webhook_id, tenant, event_type, url, delivered, \
         status_code, error, request_body, response_body, duration_ms, at_ms, next_attempt_ms) VALUES {} \
         ON CONFLICT (delivery_id, attempt) DO NOTHING",
        rows.join(", ")
    );
    let mut query = sqlx::query(&text);
    for a in chunk {
        query = query
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
            .bind(a.next_attempt_ms);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// The attempt count a delivery has after `a` (a skipped one keeps its count).
fn attempts_after(a: &Attempted) -> i64 {
    i64::from(if a.skipped { 0 } else { a.attempt })
}

async fn update_one(tx: &mut Transaction<'static, Any>, a: &Attempted) -> Result<(), ProjectionError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = CASE WHEN $2 > attempts THEN $2 ELSE attempts END, \
         next_attempt_ms = $3, claimed_until_ms = NULL, last_status_code = $4, last_error = $5, \
         updated_at_ms = $6 WHERE delivery_id = $7",
    )
    .bind(a.status())
    .bind(attempts_after(a))
    .bind(a.next_attempt_ms)
    .bind(a.status_code.map(i64::from))
    .bind(a.error.as_deref())
    .bind(a.at_ms)
    .bind(a.delivery_id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// PostgreSQL: the deliveries of many attempts in one statement (a round trip each had the
/// recorder waiting on the network most of the time).
async fn update_many(tx: &mut Transaction<'static, Any>, chunk: &[Attempted]) -> Result<(), ProjectionError> {
    // Typed, since a column of NULLs alone says nothing of its type.
    const TYPES: [&str; 7] = ["text", "text", "bigint", "bigint", "bigint", "text", "bigint"];
    let rows: Vec<String> = (0..chunk.len())
        .map(|i| {
            let typed: Vec<String> = TYPES
                .iter()
                .enumerate()
                .map(|(j, t)| format!("${}::{t}", i * TYPES.len() + j + 1))
                .collect();
            format!("({})", typed.join(", "))
        })
        .collect();
    let text = format!(
        "UPDATE webhook_deliveries AS d SET status = v.status, attempts = GREATEST(d.attempts, v.attempts), \
         next_attempt_ms = v.next, claimed_until_ms = NULL, last_status_code = v.code, last_error = v.error, \
         updated_at_ms = v.at FROM (VALUES {}) AS v(id, status, attempts, next, code, error, at) \
         WHERE d.delivery_id = v.id",
        rows.join(", ")
    );
    let mut query = sqlx::query(&text);
    for a in chunk {
        query = query
            .bind(a.delivery_id.as_str())
            .bind(a.status())
            .bind(attempts_after(a))
            .bind(a.next_attempt_ms)
            .bind(a.status_code.map(i64::from))
            .bind(a.error.as_deref())
            .bind(a.at_ms);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Each subscription's health by its latest attempt in `made`: cleared by a success, failing
/// since its first failure otherwise. Returns the failing ones with since when.
async fn health(
    tx: &mut Transaction<'static, Any>,
    made: &[&Attempted],
) -> Result<HashMap<String, i64>, ProjectionError> {
    let mut latest: HashMap<&str, &Attempted> = HashMap::new();
    for a in made {
        let entry = latest.entry(a.webhook_id.as_str()).or_insert(a);
        if a.at_ms >= entry.at_ms {
            *entry = a;
        }
    }
    let (mut delivered, mut failed): (Vec<&Attempted>, Vec<&Attempted>) = (Vec::new(), Vec::new());
    for a in latest.into_values() {
        if a.delivered {
            delivered.push(a);
        } else {
            failed.push(a);
        }
    }
    let cleared: Vec<String> = delivered.iter().map(|a| a.webhook_id.clone()).collect();
    crate::rows::delete_where_in(tx, "webhook_health", "webhook_id", &cleared).await?;
    let mut failing = HashMap::new();
    for chunk in failed.chunks(ROWS) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * 2 + 1, 2)))
            .collect();
        let text = format!(
            "INSERT INTO webhook_health (webhook_id, failing_since_ms) VALUES {} ON CONFLICT (webhook_id) DO NOTHING",
            rows.join(", ")
        );
        let mut query = sqlx::query(&text);
        for a in chunk {
            query = query.bind(a.webhook_id.as_str()).bind(a.at_ms);
        }
        query.execute(&mut **tx).await?;
        let ids: Vec<String> = chunk.iter().map(|a| a.webhook_id.clone()).collect();
        let select = "SELECT webhook_id, failing_since_ms FROM webhook_health";
        for row in crate::rows::where_in(tx, select, "webhook_id", &ids).await? {
            failing.insert(row.try_get("webhook_id")?, row.try_get("failing_since_ms")?);
        }
    }
    Ok(failing)
}
