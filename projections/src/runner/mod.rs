//! Running the shared read models: one worker tails the log from their checkpoints and applies
//! each batch to every model, rows and checkpoints in one transaction (a crash never applies an
//! event twice or skips one), woken at once by new events. It announces how far the read models
//! have come, in-process and (PostgreSQL) to every node, so a command's answer waits on a
//! notification, not a poll.

mod batches;
mod catchup;
mod deferred;
mod step;

pub use catchup::Catchup;
pub(crate) use step::projected;

use crate::{ProjectionError, ReadModel};
use batches::Batches;
use keyledger_commands::wake::LogWatch;
use keyledger_commands::{log, Backend, Database};
use sqlx::Row;
use std::collections::HashMap;
use std::time::Duration;
use step::{claim, ensure_checkpoints, names, step, Step};
use tracing::Instrument;

/// A safety net only: wake-ups arrive through the in-process watch and PostgreSQL NOTIFY.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// The live worker of the shared read models.
pub struct ProjectionRunner {
    db: Database,
    wake: LogWatch,
}

impl ProjectionRunner {
    pub fn new(db: Database, wake: LogWatch) -> Self {
        ProjectionRunner { db, wake }
    }

    /// Runs until the task is aborted. Aborting mid-batch rolls the batch back: nothing is lost.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let span = tracing::info_span!("projections");
        tokio::spawn(self.run().instrument(span))
    }

    async fn run(self) {
        let mut woken = self.wake.subscribe();
        while let Err(e) = ensure_checkpoints(&self.db, &ReadModel::ALL).await {
            tracing::error!(error = %e, "cannot create checkpoints; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut failures = 0u32;
        let mut batches = Batches::default();
        // Where the log stood when the read models last had all of it; `None` forces a look
        // (at start, after a failure, and on the safety-net timer, for appends this node was
        // not told of).
        let mut seen: Option<i64> = None;
        loop {
            woken.mark_unchanged();
            if seen.is_some_and(|at| self.wake.head() <= at) {
                // Woken by nothing new (a notification of this node's own batch, say).
                let _ = tokio::time::timeout(IDLE_POLL, woken.changed())
                    .await
                    .map_err(|_| seen = None);
                continue;
            }
            let stepped = step(&self.db, &ReadModel::ALL, &mut batches, &self.wake).await;
            match stepped {
                Ok(Step::Advanced { full: true, .. }) => {
                    failures = 0;
                    continue;
                }
                Ok(Step::Advanced { position, .. }) | Ok(Step::Idle(position)) => {
                    failures = 0;
                    seen = Some(position);
                }
                Ok(Step::Busy) => seen = None,
                Err(e) => {
                    failures += 1;
                    seen = None;
                    tracing::error!(error = %e, failures, "projection batch failed; it will be retried");
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
            if tokio::time::timeout(IDLE_POLL, woken.changed()).await.is_err() {
                seen = None;
            }
        }
    }
}

/// Empties the read models `models` and replays the whole log into them in one pass, through the
/// same code as live processing. `progress(position, head)` is called after every batch.
pub async fn rebuild(
    db: &Database,
    models: &[ReadModel],
    mut progress: impl FnMut(i64, i64),
) -> Result<i64, ProjectionError> {
    ensure_checkpoints(db, models).await?;
    loop {
        let turn = db.write_turn().await;
        let mut tx = db.pool().begin().await?;
        if claim(&mut tx, db.backend(), models).await?.len() == models.len() {
            // Table names come from the fixed list in ReadModel::tables.
            let tables = models.iter().flat_map(|m| m.tables()).copied().collect::<Vec<_>>();
            match db.backend() {
                // DELETE would leave every old row behind as a dead tuple for the new rows'
                // lookups to step over until a vacuum; TRUNCATE starts the tables afresh
                // (and is transactional there).
                Backend::Postgres => {
                    sqlx::query(&format!("TRUNCATE {}", tables.join(", ")))
                        .execute(&mut *tx)
                        .await?;
                }
                Backend::Sqlite => {
                    for table in tables {
                        sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
                    }
                }
            }
            sqlx::query(&format!(
                "UPDATE projection_checkpoints SET position = 0 WHERE name IN ({})",
                names(models)
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            break;
        }
        // On PostgreSQL a running node holds the rows only for the length of one batch.
        drop(tx);
        drop(turn);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let head = log::head(db.pool()).await?;
    progress(0, head);
    let watch = LogWatch::default();
    let mut batches = Batches::default();
    loop {
        match step(db, models, &mut batches, &watch).await? {
            Step::Advanced { position, .. } => progress(position, head.max(position)),
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
