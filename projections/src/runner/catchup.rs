//! Read-your-writes: a read of a shared read model waits until the models include every event
//! committed before it began, so a client that was just answered sees its write on any node.

use super::step;
use crate::ProjectionError;
use keyledger_commands::wake::LogWatch;
use keyledger_commands::Database;
use std::time::Duration;

/// Read-your-writes: waits until the read models include a given log position, so that a client
/// that just created a key sees it in the next list.
#[derive(Clone)]
pub struct Catchup {
    db: Database,
    watch: LogWatch,
}

/// How often a waiter reads the checkpoints itself, in case a notification was lost (a dropped
/// listener connection, or a rebuild run by another process on SQLite).
const SAFETY_NET: Duration = Duration::from_secs(1);

impl Catchup {
    pub fn new(db: Database, watch: LogWatch) -> Self {
        Catchup { db, watch }
    }

    /// Waits until the read models include every event committed before this call (the log's
    /// head, read now: a write answered by another node counts too). Reads call this, so that
    /// commands need not wait for the models before answering.
    pub async fn fresh(&self, timeout: Duration) -> Result<(), ProjectionError> {
        let head = keyledger_commands::log::head(self.db.pool()).await?;
        self.wait_for(head, timeout).await
    }

    pub async fn wait_for(&self, position: i64, timeout: Duration) -> Result<(), ProjectionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut projected = self.watch.subscribe_projected();
        loop {
            if *projected.borrow_and_update() >= position {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ProjectionError::CatchupTimeout(position));
            }
            let wait = SAFETY_NET.min(deadline - now);
            if tokio::time::timeout(wait, projected.changed()).await.is_err() {
                let mut conn = self.db.pool().acquire().await?;
                let reached = step::projected(&mut conn).await?;
                self.watch.announce_projected(reached);
            }
        }
    }
}
