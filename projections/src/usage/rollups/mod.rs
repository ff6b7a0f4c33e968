//! The usage rollups (`usage_rollups`, spoken to only here): every stored usage record, summed
//! per minute, hour and UTC day by the domain's [`Rollups`], read from `usage_batches` after the
//! checkpoint, in id order. On PostgreSQL the usage writer inserts batches under a lock, so ids
//! follow commit order and no batch below the checkpoint can appear later. Several nodes may run
//! the worker: each step locks the checkpoint row, so one node does each step, once.

pub mod export;
pub mod figures;
mod held;
pub mod window;
mod worker;
pub use worker::spawn;

use super::errors;
use super::log;
use crate::rows::tuples;
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::{Backend, Database};
use keyledger_domain::usage::{Grain, Period, RollupCell, RollupKey, Rollups, UsageId};
use sqlx::Row;
use std::borrow::BorrowMut;

/// Batches folded in one transaction: a writer flushes one batch a node every 25 ms, so a step
/// of this many catches up over a second of backlog at once, and a step at the edge's peak is
/// short enough that the records behind it wait little (with 100 ms batches, 64 had SQLite's lag
/// p99 at 0.68 s at 70 000 requests/s, 16 at 0.46 s: this is the same 1.6 s of records).
const BATCHES_PER_STEP: i64 = 64;
/// Records a step folds at most, whatever its batches hold: a writer storing a backlog (a
/// restart, an outage) writes batches of up to 50 000 records, and a step's cells are held in
/// memory until it commits.
const RECORDS_PER_STEP: i64 = 100_000;

/// Cells read or written a statement, 9 and 12 parameters each (anonymous on SQLite:
/// `rows::tuples`).
const CELLS_PER_STATEMENT: usize = 100;

fn bind_key<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    key: &'q RollupKey,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(key.grain.as_str())
        .bind(key.period.as_str())
        .bind(key.tenant.as_str())
        .bind(key.bucket.timestamp_millis())
        .bind(key.key_id.as_str())
        .bind(key.endpoint_id.as_str())
        .bind(key.plugin.as_str())
        .bind(key.outcome.recorded())
        .bind(i64::from(key.status))
}

const COLUMNS: &str = "grain, period, tenant, bucket_ms, key_id, endpoint_id, plugin, outcome, status";
/// The BIGINT columns of [`COLUMNS`], 1-based.
const BIGINTS: [usize; 2] = [4, 9];

fn stored_key(row: &sqlx::any::AnyRow) -> Result<RollupKey, ProjectionError> {
    let grain: String = row.try_get("grain")?;
    let period: String = row.try_get("period")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(RollupKey {
        grain: grain.parse().map_err(corrupt)?,
        period: Period::stored(&period).map_err(corrupt)?,
        bucket: crate::sql::time(row.try_get("bucket_ms")?),
        tenant: row.try_get("tenant")?,
        key_id: row.try_get("key_id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        plugin: row.try_get("plugin")?,
        outcome: keyledger_domain::usage::Outcome::from_recorded(&outcome).map_err(corrupt)?,
        status: u16::try_from(row.try_get::<i64, _>("status")?).map_err(corrupt)?,
    })
}

/// Adds to each fresh cell what its stored row already holds: one query for the chunk. The cells
/// are a step's own or, where a worker holds the rest, borrowed from them.
async fn merge_stored<C: BorrowMut<(RollupKey, RollupCell)>>(
    tx: &mut sqlx::AnyConnection,
    cells: &mut [C],
) -> Result<(), ProjectionError> {
    let sql = format!(
        "SELECT {COLUMNS}, requests, latency_sum_us, latency_sketch FROM usage_rollups WHERE ({COLUMNS}) IN (VALUES {})",
        tuples(tx, cells.len(), 9, &BIGINTS)
    );
    let mut query = sqlx::query(&sql);
    for cell in cells.iter() {
        query = bind_key(query, &cell.borrow().0);
    }
    let rows = query.fetch_all(&mut *tx).await?;
    let at: std::collections::HashMap<&RollupKey, usize, foldhash::fast::RandomState> = cells
        .iter()
        .enumerate()
        .map(|(i, cell)| (&cell.borrow().0, i))
        .collect();
    let mut stored = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(&i) = at.get(&stored_key(row)?) else { continue };
        stored.push((i, stored_cell(row)?));
    }
    for (i, cell) in stored {
        cells[i].borrow_mut().1.merge(&cell).map_err(corrupt)?;
    }
    Ok(())
}

/// Writes the chunk's cells over their rows: one statement.
async fn upsert(tx: &mut sqlx::AnyConnection, cells: &[(RollupKey, RollupCell)]) -> Result<(), ProjectionError> {
    let sql = format!(
        "INSERT INTO usage_rollups ({COLUMNS}, requests, latency_sum_us, latency_sketch) VALUES {} \
         ON CONFLICT ({COLUMNS}) DO UPDATE SET requests = excluded.requests, \
         latency_sum_us = excluded.latency_sum_us, latency_sketch = excluded.latency_sketch",
        tuples(tx, cells.len(), 12, &[])
    );
    let sketches: Vec<String> = cells.iter().map(|(_, cell)| cell.sketch_text()).collect();
    let mut query = sqlx::query(&sql);
    for ((key, cell), sketch) in cells.iter().zip(&sketches) {
        query = bind_key(query, key)
            .bind(cell.requests as i64)
            .bind(cell.latency_sum_us.min(i64::MAX as u64) as i64)
            .bind(sketch.as_str());
    }
    query.execute(&mut *tx).await?;
    Ok(())
}

fn corrupt(e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Usage(format!("a stored rollup does not read back: {e}"))
}

/// Folds the next batches after the checkpoint into the rollups, in one transaction with the
/// checkpoint; returns how many records it read (0 when there was nothing new). Records more
/// than a day before `now` get no minute cells (they would be swept: retention).
pub async fn step(db: &Database, now: DateTime<Utc>) -> Result<usize, ProjectionError> {
    Steps::default().next(db, now).await
}

/// A worker's steps, as the rollups worker takes them: like [`step`], each holding the cells it
/// wrote for the next (`held.rs`).
pub struct Steps(held::Held);

impl Default for Steps {
    fn default() -> Self {
        Steps(held::Held::new())
    }
}

impl Steps {
    pub async fn next(&mut self, db: &Database, now: DateTime<Utc>) -> Result<usize, ProjectionError> {
        Ok(self.fold(db, now).await?.records)
    }

    /// The step, with whether batches are left after it (the worker's pace).
    async fn fold(&mut self, db: &Database, now: DateTime<Utc>) -> Result<Folded, ProjectionError> {
        fold(db, now, &mut self.0).await
    }
}

/// What a step did: the records it read, and whether batches are left after it.
struct Folded {
    records: usize,
    more: bool,
}

async fn fold(db: &Database, now: DateTime<Utc>, held: &mut held::Held) -> Result<Folded, ProjectionError> {
    let none = Folded {
        records: 0,
        more: false,
    };
    // Asked outside a transaction and without the write turn, which commands wait for on SQLite:
    // an idle worker asks at every write of this node and every [`worker::POLL`].
    let behind: i64 = sqlx::query_scalar(
        "SELECT CAST(CASE WHEN grains_summed = 0 OR EXISTS (SELECT 1 FROM usage_batches b WHERE b.id > c.batch_id) \
         THEN 1 ELSE 0 END AS BIGINT) FROM usage_rollup_checkpoint c WHERE c.id = 1",
    )
    .fetch_one(db.pool())
    .await?;
    if behind == 0 {
        return Ok(none);
    }
    let _turn = db.write_turn().await;
    // Derived from the usage log and committed with its checkpoint, like a read model: a commit
    // a power cut takes back is folded again, so it need not wait for the WAL's sync.
    let mut tx = db.derived_pool().begin().await?;
    let lock = match db.backend() {
        Backend::Postgres => {
            // A plan made once for any values (PostgreSQL's generic plan, after five runs of a
            // prepared statement) was kept while the table grew and looked up a step's cells by
            // hashing the whole table: 250 ms a statement at 3 million rows, where a plan for the
            // cells at hand seeks each of them in the primary key.
            sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
                .execute(&mut *tx)
                .await?;
            " FOR UPDATE"
        }
        Backend::Sqlite => "",
    };
    let (from, folded_by): (i64, i64) = sqlx::query_as(&format!(
        "SELECT batch_id, folded_by FROM usage_rollup_checkpoint WHERE id = 1{lock}"
    ))
    .fetch_one(&mut *tx)
    .await?;
    held.found(from, folded_by);
    sum_grains(&mut tx).await?;
    let Some(log::Page { end: upto, more }) =
        log::page(&mut tx, from, i64::MAX, BATCHES_PER_STEP, RECORDS_PER_STEP).await?
    else {
        tx.commit().await?;
        return Ok(none);
    };
    let first_minute = minutes_from(now);
    let mut fresh = Rollups::with_minutes_from(first_minute);
    // Folded as they are read; only the errors to keep are held.
    let mut kept = errors::Kept::default();
    let read = log::each(
        &mut tx,
        UsageId::after_batch(from),
        upto,
        log::Texts::OfErrors,
        |entry| {
            fresh.add(&entry);
            kept.offer(entry);
        },
    )
    .await?;
    errors::keep(&mut tx, kept).await?;
    // Written in key order, as `into_sorted` gives them: held or read back, each stays in place.
    let mut cells = fresh.into_sorted().map_err(corrupt)?;
    let mut unheld = held.merge_into(&mut cells).map_err(corrupt)?;
    for chunk in unheld.chunks_mut(CELLS_PER_STATEMENT) {
        merge_stored(&mut tx, chunk).await?;
    }
    for chunk in cells.chunks(CELLS_PER_STATEMENT) {
        upsert(&mut tx, chunk).await?;
    }
    sqlx::query("UPDATE usage_rollup_checkpoint SET batch_id = $1, folded_by = $2 WHERE id = 1")
        .bind(upto)
        .bind(held.mark())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    held.wrote(upto, cells, first_minute);
    metrics::gauge!("keyledger_usage_rollups_batch").set(upto as f64);
    Ok(Folded { records: read, more })
}

/// Rows folded before the grains (migration 0013) are detailed rows only, and no weeks: sums them
/// into the coarser grains and their days into weeks once, in the step's transaction (which holds the checkpoint, so no fold runs
/// meanwhile and no node does it twice).
async fn sum_grains(tx: &mut sqlx::AnyConnection) -> Result<(), ProjectionError> {
    let summed: i64 =
        sqlx::query_scalar("SELECT CAST(grains_summed AS BIGINT) FROM usage_rollup_checkpoint WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    if summed != 0 {
        return Ok(());
    }
    let buckets: Vec<(String, i64)> =
        sqlx::query_as("SELECT DISTINCT period, bucket_ms FROM usage_rollups WHERE grain = 'detail'")
            .fetch_all(&mut *tx)
            .await?;
    if !buckets.is_empty() {
        tracing::info!(buckets = buckets.len(), "summing rollups folded before the grains");
    }
    for (period, bucket) in buckets {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, requests, latency_sum_us, latency_sketch FROM usage_rollups \
             WHERE grain = 'detail' AND period = $1 AND bucket_ms = $2"
        ))
        .bind(period)
        .bind(bucket)
        .fetch_all(&mut *tx)
        .await?;
        let mut coarse = Rollups::default();
        for row in &rows {
            let key = stored_key(row)?;
            let cell = stored_cell(row)?;
            for grain in [Grain::Tenant, Grain::Endpoint, Grain::Key] {
                coarse.merge(key.at_grain(grain), &cell).map_err(corrupt)?;
            }
            // Weeks came with the grains too: each is the sum of its days, at every grain.
            if key.period == Period::Day {
                let week = RollupKey {
                    period: Period::Week,
                    bucket: Period::Week.bucket(key.bucket),
                    ..key
                };
                for grain in Grain::ALL {
                    coarse.merge(week.at_grain(grain), &cell).map_err(corrupt)?;
                }
            }
        }
        let mut cells = coarse.into_sorted().map_err(corrupt)?;
        for chunk in cells.chunks_mut(CELLS_PER_STATEMENT) {
            merge_stored(tx, chunk).await?;
            upsert(tx, chunk).await?;
        }
    }
    sqlx::query("UPDATE usage_rollup_checkpoint SET grains_summed = 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn stored_cell(row: &sqlx::any::AnyRow) -> Result<RollupCell, ProjectionError> {
    let requests: i64 = row.try_get("requests")?;
    let sum: i64 = row.try_get("latency_sum_us")?;
    let sketch: String = row.try_get("latency_sketch")?;
    RollupCell::stored(requests.max(0) as u64, sum.max(0) as u64, &sketch).map_err(corrupt)
}

/// The first minute whose cells are kept at `now`: as the retention sweep keeps them.
pub fn minutes_from(now: DateTime<Utc>) -> DateTime<Utc> {
    Period::Minute.bucket(now) - super::retention::MINUTE_ROLLUPS
}

/// Empties the rollups and the kept errors, and moves the checkpoint back to the first batch.
pub(super) async fn clear(tx: &mut sqlx::AnyConnection) -> Result<(), ProjectionError> {
    sqlx::query("DELETE FROM usage_rollups").execute(&mut *tx).await?;
    errors::clear(&mut *tx).await?;
    sqlx::query("UPDATE usage_rollup_checkpoint SET batch_id = 0, grains_summed = 1, folded_by = 0 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Empties the rollups and folds every stored batch again, as at `now`; returns the records
/// read. `progress` is told the batch reached and the last batch id after each step.
pub async fn rebuild(db: &Database, now: DateTime<Utc>, progress: impl Fn(i64, i64)) -> Result<u64, ProjectionError> {
    {
        let _turn = db.write_turn().await;
        let mut tx = db.pool().begin().await?;
        clear(&mut tx).await?;
        tx.commit().await?;
    }
    let last = log::last_batch(db).await?;
    let mut records = 0;
    // Until the checkpoint reaches the last batch, not until a step reads no record: a page of
    // batches that do not read (left out by the log reader) still moves the checkpoint on.
    loop {
        records += step(db, now).await? as u64;
        let reached = checkpoint(db).await?;
        progress(reached, last);
        if reached >= last {
            return Ok(records);
        }
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
