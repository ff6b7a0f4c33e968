//! The usage rollups (`usage_rollups`, spoken to only here): every stored usage record, summed
//! per minute, hour and UTC day by the domain's [`Rollups`], read from `usage_batches` after the
//! checkpoint, in id order. On PostgreSQL the usage writer inserts batches under a lock, so ids
//! follow commit order and no batch below the checkpoint can appear later. Several nodes may run
//! the worker: each step locks the checkpoint row, so one node does each step, once.

pub mod export;
pub mod figures;

use super::errors;
use super::log;
use crate::ProjectionError;
use keyledger_commands::{Backend, Database};
use keyledger_domain::usage::{RollupCell, RollupKey, Rollups, UsageId};
use sqlx::Row;
use std::time::Duration;
use tracing::Instrument;

/// Batches folded in one transaction: a writer flushes one batch a node every 100 ms, so a step
/// of this many catches up seconds of backlog at once.
const BATCHES_PER_STEP: i64 = 64;
/// How often an idle worker looks for new batches: records are in the rollups within this, plus
/// the writer's 100 ms.
const POLL: Duration = Duration::from_millis(250);

/// Keeps the rollups current until the task is aborted.
pub fn spawn(db: Database) -> tokio::task::JoinHandle<()> {
    tokio::spawn(
        async move {
            loop {
                match step(&db).await {
                    Ok(0) => tokio::time::sleep(POLL).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "usage rollups did not advance; retrying");
                        tokio::time::sleep(POLL * 4).await;
                    }
                }
            }
        }
        .instrument(tracing::info_span!("usage_rollups")),
    )
}

const KEY: &str = "period = $1 AND bucket_ms = $2 AND tenant = $3 AND key_id = $4 AND endpoint_id = $5 \
                   AND plugin = $6 AND outcome = $7 AND status = $8";

fn bind_key<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    key: &'q RollupKey,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(key.period.as_str())
        .bind(key.bucket.timestamp_millis())
        .bind(key.tenant.as_str())
        .bind(key.key_id.as_str())
        .bind(key.endpoint_id.as_str())
        .bind(key.plugin.as_str())
        .bind(key.outcome.recorded())
        .bind(i64::from(key.status))
}

fn corrupt(e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Usage(format!("a stored rollup does not read back: {e}"))
}

/// Folds the next batches after the checkpoint into the rollups, in one transaction with the
/// checkpoint; returns how many records it read (0 when there was nothing new).
pub async fn step(db: &Database) -> Result<usize, ProjectionError> {
    // Asked outside a transaction and without the write turn, which commands wait for on SQLite:
    // an idle worker asks four times a second.
    let behind: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT 1 FROM usage_batches \
         WHERE id > (SELECT batch_id FROM usage_rollup_checkpoint WHERE id = 1) LIMIT 1) next",
    )
    .fetch_one(db.pool())
    .await?;
    if behind == 0 {
        return Ok(0);
    }
    let _turn = db.write_turn().await;
    let mut tx = db.pool().begin().await?;
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let from: i64 = sqlx::query_scalar(&format!(
        "SELECT batch_id FROM usage_rollup_checkpoint WHERE id = 1{lock}"
    ))
    .fetch_one(&mut *tx)
    .await?;
    let Some(upto) = log::page_end(&mut tx, from, i64::MAX, BATCHES_PER_STEP).await? else {
        return Ok(0);
    };
    let (entries, read) = log::entries(&mut tx, UsageId::after_batch(from), upto).await?;
    let mut fresh = Rollups::default();
    for entry in &entries {
        fresh.add(entry);
    }
    errors::keep(&mut tx, &entries).await?;
    for (key, mut cell) in fresh.into_sorted() {
        let stored = bind_key(
            sqlx::query(&format!(
                "SELECT requests, latency_sum_us, latency_sketch FROM usage_rollups WHERE {KEY}"
            )),
            &key,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = stored {
            let requests: i64 = row.try_get("requests")?;
            let sum: i64 = row.try_get("latency_sum_us")?;
            let sketch: String = row.try_get("latency_sketch")?;
            let stored = RollupCell::stored(requests.max(0) as u64, sum.max(0) as u64, &sketch).map_err(corrupt)?;
            cell.merge(&stored).map_err(corrupt)?;
        }
        let (requests, sum) = (cell.requests as i64, cell.latency_sum_us.min(i64::MAX as u64) as i64);
        bind_key(
            sqlx::query(
                "INSERT INTO usage_rollups (period, bucket_ms, tenant, key_id, endpoint_id, plugin, outcome, status, \
                 requests, latency_sum_us, latency_sketch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (period, bucket_ms, tenant, key_id, endpoint_id, plugin, outcome, status) DO UPDATE SET \
                 requests = excluded.requests, latency_sum_us = excluded.latency_sum_us, \
                 latency_sketch = excluded.latency_sketch",
            ),
            &key,
        )
        .bind(requests)
        .bind(sum)
        .bind(cell.sketch_text())
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE usage_rollup_checkpoint SET batch_id = $1 WHERE id = 1")
        .bind(upto)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    metrics::gauge!("keyledger_usage_rollups_batch").set(upto as f64);
    Ok(read)
}

/// Empties the rollups and folds every stored batch again; returns the records read.
/// `progress` is told the batch reached and the last batch id after each step.
pub async fn rebuild(db: &Database, progress: impl Fn(i64, i64)) -> Result<u64, ProjectionError> {
    {
        let _turn = db.write_turn().await;
        let mut tx = db.pool().begin().await?;
        sqlx::query("DELETE FROM usage_rollups").execute(&mut *tx).await?;
        errors::clear(&mut tx).await?;
        sqlx::query("UPDATE usage_rollup_checkpoint SET batch_id = 0 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let last = log::last_batch(db).await?;
    let mut records = 0;
    loop {
        match step(db).await? {
            0 => return Ok(records),
            n => records += n as u64,
        }
        progress(checkpoint(db).await?, last);
    }
}

/// Deletes the oldest minute of minute rollups if it is before `horizon`; false when none is.
/// One minute a call: a sweep of a long backlog never holds the write turn long.
pub async fn forget_oldest_minute(db: &Database, horizon: i64) -> Result<bool, ProjectionError> {
    let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(bucket_ms) FROM usage_rollups WHERE period = 'minute'")
        .fetch_one(db.pool())
        .await?;
    let Some(oldest) = oldest.filter(|b| *b < horizon) else {
        return Ok(false);
    };
    let _turn = db.write_turn().await;
    sqlx::query("DELETE FROM usage_rollups WHERE period = 'minute' AND bucket_ms = $1")
        .bind(oldest)
        .execute(db.pool())
        .await?;
    Ok(true)
}

/// Every batch id the rollups include (the checkpoint).
pub async fn checkpoint(db: &Database) -> Result<i64, ProjectionError> {
    Ok(
        sqlx::query_scalar("SELECT batch_id FROM usage_rollup_checkpoint WHERE id = 1")
            .fetch_one(db.pool())
            .await?,
    )
}
