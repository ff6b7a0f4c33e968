//! Running projections: tail the log from a checkpoint, apply a batch and move the checkpoint in
//! one transaction.

use crate::{ProjectionError, ReadModel};
use keyledger_commands::wake::LogWatch;
use keyledger_commands::{log, Backend, Database};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;
use std::time::Duration;
use tracing::Instrument;

const BATCH: i64 = 500;
/// A safety net only: wake-ups arrive through the in-process watch and PostgreSQL NOTIFY.
const IDLE_POLL: Duration = Duration::from_secs(2);

enum Step {
    Advanced(i64),
    Idle(i64),
    /// Another node is the active writer of this projection.
    Busy,
}

async fn ensure_checkpoint(db: &Database, model: ReadModel) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, updated_at_ms) VALUES ($1, 0, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(model.name())
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Locks this projection's checkpoint row for the transaction; `None` if another node holds it.
async fn claim(conn: &mut AnyConnection, backend: Backend, model: ReadModel) -> Result<Option<i64>, ProjectionError> {
    let row = match backend {
        Backend::Postgres => {
            sqlx::query("SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE SKIP LOCKED")
                .bind(model.name())
                .fetch_optional(&mut *conn)
                .await?
        }
        Backend::Sqlite => {
            // Writing first takes SQLite's write lock up front (waiting on busy_timeout), so the
            // read below cannot go stale before our own write.
            sqlx::query("UPDATE projection_checkpoints SET position = position WHERE name = $1")
                .bind(model.name())
                .execute(&mut *conn)
                .await?;
            sqlx::query("SELECT position FROM projection_checkpoints WHERE name = $1")
                .bind(model.name())
                .fetch_optional(&mut *conn)
                .await?
        }
    };
    Ok(match row {
        Some(row) => Some(row.try_get::<i64, _>("position")?),
        None => None,
    })
}

async fn step(db: &Database, model: ReadModel) -> Result<Step, ProjectionError> {
    let mut tx = db.pool().begin().await?;
    let Some(position) = claim(&mut tx, db.backend(), model).await? else {
        tx.rollback().await?;
        return Ok(Step::Busy);
    };
    let events = log::read_after(&mut *tx, position, BATCH).await?;
    let Some(last) = events.last().map(|e| e.position) else {
        tx.rollback().await?;
        return Ok(Step::Idle(position));
    };
    for event in &events {
        model.apply(&mut tx, event).await?;
    }
    sqlx::query("UPDATE projection_checkpoints SET position = $1, updated_at_ms = $2 WHERE name = $3")
        .bind(last)
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(model.name())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::debug!(
        projection = model.name(),
        position = last,
        applied = events.len(),
        "projection advanced"
    );
    Ok(Step::Advanced(last))
}

/// One live projection worker.
pub struct ProjectionRunner {
    db: Database,
    model: ReadModel,
    wake: LogWatch,
}

impl ProjectionRunner {
    pub fn new(db: Database, model: ReadModel, wake: LogWatch) -> Self {
        ProjectionRunner { db, model, wake }
    }

    /// Runs until the task is aborted. Aborting mid-batch rolls the batch back: nothing is lost.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let span = tracing::info_span!("projection", name = self.model.name());
        tokio::spawn(self.run().instrument(span))
    }

    async fn run(self) {
        let mut woken = self.wake.subscribe();
        let mut failures = 0u32;
        loop {
            if let Err(e) = ensure_checkpoint(&self.db, self.model).await {
                tracing::error!(error = %e, "cannot create checkpoint; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            break;
        }
        loop {
            woken.mark_unchanged();
            match step(&self.db, self.model).await {
                Ok(Step::Advanced(_)) => {
                    failures = 0;
                    continue;
                }
                Ok(Step::Idle(_)) => failures = 0,
                Ok(Step::Busy) => {}
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, failures, "projection batch failed; it will be retried");
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
            let _ = tokio::time::timeout(IDLE_POLL, woken.changed()).await;
        }
    }
}

/// Empties a read model and replays the whole log into it through the same code as live
/// processing. `progress(position, head)` is called after every batch.
pub async fn rebuild(
    db: &Database,
    model: ReadModel,
    mut progress: impl FnMut(i64, i64),
) -> Result<i64, ProjectionError> {
    ensure_checkpoint(db, model).await?;
    let mut tx = db.pool().begin().await?;
    if claim(&mut tx, db.backend(), model).await?.is_none() {
        // On PostgreSQL a running node holds the row only for the length of one batch.
        drop(tx);
        tokio::time::sleep(Duration::from_millis(200)).await;
        return Box::pin(rebuild(db, model, progress)).await;
    }
    for table in model.tables() {
        // Table names come from the fixed list in ReadModel::tables.
        sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE projection_checkpoints SET position = 0 WHERE name = $1")
        .bind(model.name())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let head = log::head(db.pool()).await?;
    progress(0, head);
    loop {
        match step(db, model).await? {
            Step::Advanced(position) => progress(position, head.max(position)),
            Step::Idle(position) => return Ok(position),
            Step::Busy => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Checkpoints of all projections.
pub async fn checkpoints(db: &Database) -> Result<HashMap<String, i64>, ProjectionError> {
    let rows = sqlx::query("SELECT name, position FROM projection_checkpoints")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>("name")?, r.try_get::<i64, _>("position")?)))
        .collect()
}

/// Read-your-writes: waits until the read models include a given log position, so that a client
/// that just created a key sees it in the next list.
#[derive(Clone)]
pub struct Catchup {
    db: Database,
}

impl Catchup {
    pub fn new(db: Database) -> Self {
        Catchup { db }
    }

    pub async fn wait_for(&self, position: i64, timeout: Duration) -> Result<(), ProjectionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            let all = checkpoints(&self.db).await?;
            let caught_up = ReadModel::ALL
                .iter()
                .all(|m| all.get(m.name()).is_some_and(|p| *p >= position));
            if caught_up {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProjectionError::CatchupTimeout(position));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}
