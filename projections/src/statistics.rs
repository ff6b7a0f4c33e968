//! Planner statistics for read models that grow in bulk (a rebuild, a node catching up on a
//! backlog). PostgreSQL plans a batch's `key_id IN (…)` from its statistics; a table filled
//! since its last ANALYZE has none, and the planner's default guess (0.5 % of the rows per id)
//! made it scan the whole key lookup table for every batch: 190 ms of each 10 000-event batch,
//! and the rebuild ran at half its speed. Autovacuum fixes that eventually, if it is on and once
//! its next round comes; a rebuild cannot wait for it, so the runner analyses the tables it
//! fills itself, each time the events it applied have grown eightfold, beside its batches rather
//! than between them (an ANALYZE does not block writes). SQLite's planner prefers an index
//! without statistics and needs none of this.

use crate::ReadModel;
use keyledger_commands::{Backend, Database};
use tokio::task::JoinHandle;

/// Events applied before the first ANALYZE: below this a table is small enough for any plan.
const FIRST: u64 = 10_000;
/// Growth between two ANALYZEs. The planner scales what it learnt by the table's current size,
/// so the proportions of a sample stay good for long; an ANALYZE of a large table costs 0.4 s.
const GROWTH: u64 = 8;

/// When the tables a runner reads back are next analysed.
pub(crate) struct Statistics {
    applied: u64,
    next: u64,
    /// The ANALYZE under way, if any.
    running: Option<JoinHandle<()>>,
}

impl Default for Statistics {
    fn default() -> Self {
        Statistics {
            applied: 0,
            next: FIRST,
            running: None,
        }
    }
}

impl Statistics {
    /// Counts a committed batch of `events`, and starts an ANALYZE of the looked-up tables of
    /// `models` when the events applied since this runner started have grown eightfold since the
    /// last one (or at the next batch, while the last still runs). A failed ANALYZE costs plans,
    /// not data: it is logged.
    pub(crate) fn applied(&mut self, db: &Database, models: &[ReadModel], events: usize) {
        self.applied += events as u64;
        if db.backend() != Backend::Postgres || self.applied < self.next {
            return;
        }
        if self.running.as_ref().is_some_and(|running| !running.is_finished()) {
            return;
        }
        self.next = self.applied.saturating_mul(GROWTH);
        let tables = models.iter().flat_map(|m| m.looked_up()).copied().collect::<Vec<_>>();
        if tables.is_empty() {
            return;
        }
        let (db, applied) = (db.clone(), self.applied);
        self.running = Some(tokio::spawn(async move {
            let started = std::time::Instant::now();
            // Table names come from the fixed list in ReadModel::looked_up.
            match sqlx::query(&format!("ANALYZE {}", tables.join(", ")))
                .execute(db.pool())
                .await
            {
                Ok(_) => tracing::debug!(
                    applied,
                    took_ms = started.elapsed().as_millis() as u64,
                    "analysed the read models' tables"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot analyse the read models' tables"),
            }
        }));
    }
}

impl Drop for Statistics {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}
