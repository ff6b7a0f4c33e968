//! The usage log's one reader: the records of `usage_log` (one row a record, over the stored
//! batches), in log order. The rollups fold them, the feed hands them out, streams replay them.

use crate::ProjectionError;
use chrono::DateTime;
use keyledger_commands::Database;
use keyledger_domain::usage::{Outcome, UsageEntry, UsageId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// The newest batch's id (0 while there is none).
pub async fn last_batch(db: &Database) -> Result<i64, ProjectionError> {
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM usage_batches")
        .fetch_one(db.pool())
        .await?;
    Ok(last.unwrap_or(0))
}

/// The id of the last of at most `batches` batches after `after` and up to `upto` (inclusive):
/// where a read of that many batches ends. `None` when there are none.
pub async fn page_end(
    conn: &mut AnyConnection,
    after: i64,
    upto: i64,
    batches: i64,
) -> Result<Option<i64>, ProjectionError> {
    Ok(sqlx::query_scalar(
        "SELECT MAX(id) FROM (SELECT id FROM usage_batches WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3) page",
    )
    .bind(after)
    .bind(upto)
    .bind(batches)
    .fetch_one(&mut *conn)
    .await?)
}

/// A record whose outcome or time does not read (written by a newer version, or damaged) is
/// logged and left out: one record must not stop the reading of all the others.
fn known(row: &AnyRow) -> Result<Option<(Outcome, chrono::DateTime<chrono::Utc>)>, ProjectionError> {
    let code: String = row.try_get("code")?;
    let at_ms: i64 = row.try_get("at_ms")?;
    match (Outcome::from_recorded(&code), DateTime::from_timestamp_millis(at_ms)) {
        (Ok(outcome), Some(at)) => Ok(Some((outcome, at))),
        _ => {
            tracing::warn!(
                code,
                at_ms,
                "a usage record with an unknown outcome or time is left out"
            );
            Ok(None)
        }
    }
}

fn status(row: &AnyRow) -> Result<u16, ProjectionError> {
    Ok(u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or(0))
}

/// The records after `after` in the batches up to `upto`, in log order, and how many rows were
/// read (those left out included).
pub async fn entries(
    conn: &mut AnyConnection,
    after: UsageId,
    upto: i64,
) -> Result<(Vec<UsageEntry>, usize), ProjectionError> {
    // From `after`'s own batch, unless `after` ends it.
    let first = if after.is_last_of_batch() {
        after.batch + 1
    } else {
        after.batch
    };
    let rows = sqlx::query(
        "SELECT batch_id, seq, at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, code, latency_us, \
         client_ip FROM usage_log WHERE batch_id >= $1 AND batch_id <= $2 ORDER BY batch_id, seq",
    )
    .bind(first)
    .bind(upto)
    .fetch_all(&mut *conn)
    .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let (batch, seq): (i64, i64) = (row.try_get("batch_id")?, row.try_get("seq")?);
        let Some(id) = UsageId::new(batch, seq) else {
            tracing::warn!(batch, seq, "a usage record past its batch's size is left out");
            continue;
        };
        if id <= after {
            continue;
        }
        let Some((outcome, at)) = known(row)? else { continue };
        entries.push(UsageEntry {
            id,
            at,
            tenant: row.try_get("tenant")?,
            key_id: row.try_get("key_id")?,
            endpoint_id: row.try_get("endpoint_id")?,
            plugin: row.try_get("plugin")?,
            method: row.try_get::<Option<String>, _>("method")?.unwrap_or_default(),
            path: row.try_get::<Option<String>, _>("path")?.unwrap_or_default(),
            status: status(row)?,
            outcome,
            latency_us: row.try_get("latency_us")?,
            client_ip: row.try_get("client_ip")?,
        });
    }
    Ok((entries, rows.len()))
}
