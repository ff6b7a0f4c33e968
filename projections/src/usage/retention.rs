//! Retention of usage: raw records (`usage_batches`) are deleted once older than the configured
//! days (30 by default), minute rollups once older than a day; hour and day rollups are kept, so
//! analytics over any range still answer. A batch is deleted only once the rollups include it,
//! and a few batches at a time, each step its own short transaction, so that the usage writer
//! and the rollups never wait long behind a sweep.

use super::{errors, rollups};
use crate::ProjectionError;
use chrono::{DateTime, Duration, Utc};
use keyledger_commands::clock::Clock;
use keyledger_commands::Database;
use sqlx::Row;
use std::sync::Arc;
use tracing::Instrument;

/// Batches deleted per transaction: up to 10 000 records each.
const BATCHES_PER_STEP: i64 = 16;
/// How long minute rollups are kept: the 24-hour range at minute resolution.
pub const MINUTE_ROLLUPS: Duration = Duration::days(1);
/// How often a node sweeps.
const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What one sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub batches: i64,
    pub records: i64,
    pub minute_buckets: i64,
    /// Kept errors (analytics' most recent errors) past the same retention.
    pub errors: i64,
}

/// Sweeps every minute until aborted.
pub fn spawn(db: Database, clock: Arc<dyn Clock>, raw: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(
        async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match sweep(&db, clock.now(), raw).await {
                    Ok(swept) if swept != Swept::default() => {
                        tracing::info!(?swept, "usage past its retention deleted")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "usage retention sweep failed; it will run again"),
                }
            }
        }
        .instrument(tracing::info_span!("usage_retention")),
    )
}

/// Deletes, at `now`, raw usage older than `raw` and minute rollups older than a day.
pub async fn sweep(db: &Database, now: DateTime<Utc>, raw: Duration) -> Result<Swept, ProjectionError> {
    let mut swept = Swept::default();
    let horizon = (now - raw).timestamp_millis();
    loop {
        let (batches, records, more) = delete_batches(db, horizon).await?;
        swept.batches += batches;
        swept.records += records;
        metrics::counter!("keyledger_usage_records_deleted_total").increment(records.max(0) as u64);
        if !more {
            break;
        }
        // Room for the writer and the rollups between steps.
        tokio::task::yield_now().await;
    }
    swept.errors = errors::forget_before(db, horizon).await? as i64;
    let minute_horizon = rollups::minutes_from(now).timestamp_millis();
    while rollups::forget_oldest_minute(db, minute_horizon).await? {
        swept.minute_buckets += 1;
    }
    Ok(swept)
}

/// Deletes every stored usage record, rollup and kept error, whatever its age. The million-key
/// benchmark starts a reused key set this way, so that each run measures the keys and not the
/// usage earlier runs left (a million keys presented once leave eight million rollup cells).
pub async fn forget_all(db: &Database) -> Result<(), ProjectionError> {
    let _turn = db.write_turn().await;
    let mut tx = db.pool().begin().await?;
    sqlx::query("DELETE FROM usage_batches").execute(&mut *tx).await?;
    rollups::clear(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// One step: the oldest batches, in id order, that are older than `horizon` and rolled up.
/// Returns the batches and records deleted, and whether there may be more.
async fn delete_batches(db: &Database, horizon: i64) -> Result<(i64, i64, bool), ProjectionError> {
    let included = rollups::checkpoint(db).await?;
    let _turn = db.write_turn().await;
    let mut tx = db.pool().begin().await?;
    // The oldest batches by id, then those of them old enough, up to the first that is not:
    // asking for old batches directly would scan the whole table whenever none is old yet.
    let oldest =
        sqlx::query("SELECT id, records, written_at_ms FROM usage_batches WHERE id <= $1 ORDER BY id LIMIT $2")
            .bind(included)
            .bind(BATCHES_PER_STEP)
            .fetch_all(&mut *tx)
            .await?;
    let mut ids = Vec::new();
    let mut records = 0;
    for row in &oldest {
        if row.try_get::<i64, _>("written_at_ms")? >= horizon {
            break;
        }
        ids.push(row.try_get::<i64, _>("id")?);
        records += row.try_get::<i64, _>("records")?;
    }
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return Ok((0, 0, false));
    };
    sqlx::query("DELETE FROM usage_batches WHERE id >= $1 AND id <= $2")
        .bind(first)
        .bind(last)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let more = ids.len() as i64 == BATCHES_PER_STEP;
    Ok((ids.len() as i64, records, more))
}
