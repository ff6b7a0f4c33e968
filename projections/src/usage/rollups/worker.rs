//! The task that keeps the rollups current: woken by this node's usage writer after each write,
//! and every [`POLL`] for the batches other nodes' writers store in the same database.

use super::{Folded, Steps};
use keyledger_commands::clock::Clock;
use keyledger_commands::Database;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;

/// How often a worker looks for batches no write of this node announced: another node's, on a
/// shared database. This node's records are in the rollups within the writer's 25 ms and one
/// step. Asking every 25 ms, as the worker did, was 40 queries a second from every idle node.
pub(super) const POLL: Duration = Duration::from_millis(250);
/// How long a worker waits after a step the database refused: not at once, or an outage
/// would log a warning at every write.
const RETRY: Duration = Duration::from_millis(400);

/// While caught up, the next step waits [`PACE`] times as long as the last one took, at least
/// [`GAP`] and at most [`PACE_MAX`], and then for the next write. A step's cost grows with the
/// distinct cells it writes (a key, endpoint, outcome and status each, times sixteen periods and
/// grains) and the errors it keeps (up to 1 000 a tenant), not with its records: under traffic
/// from thousands of keys, steps back to back every 100 ms wrote the same cells again each time
/// and took 40 % of the edge's core (README: Edge performance, fourth step). Paced, a step folds
/// more records into the same cells, the rollups take at most a thirteenth of a core while they
/// keep up, and their lag stays within the ingestion target of 1 s (p99 588 ms on SQLite, 645 ms
/// on PostgreSQL at the edge's peak). Eight times and at most 400 ms (a ninth) left the rollups
/// 12 % of a node's core at a million keys and beside an invalid-key flood (README: Edge
/// performance, ninth step). The gap bounds what a step's fixed
/// work (its transaction, checkpoint and statements) costs a busy node: a step after every 25 ms
/// write cost the edge's core about as much as decoding the records it folded (README: Edge
/// performance, seventh step). Behind (a restart, a backlog) the steps run back to back; their
/// loops yield every [`super::log::YIELD_EVERY`] records, so a longer step does not hold the
/// edge's answers behind it.
const PACE: u32 = 12;
const GAP: Duration = Duration::from_millis(200);
const PACE_MAX: Duration = Duration::from_millis(450);

/// What a worker does after a step that folded `records` in `took`, with `more` batches after
/// it: step again at once (`None`), or wait the time given and then for a write or the poll.
fn pause(records: usize, more: bool, took: Duration) -> Option<Duration> {
    match (records, more) {
        (_, true) => None,
        (0, false) => Some(Duration::ZERO),
        (_, false) => Some((took * PACE).clamp(GAP, PACE_MAX)),
    }
}

/// Keeps the rollups current until the task is aborted; `written` is notified by this node's
/// usage writer after each write.
pub fn spawn(db: Database, clock: Arc<dyn Clock>, written: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(
        async move {
            let mut steps = Steps::default();
            loop {
                let began = std::time::Instant::now();
                match steps.fold(&db, clock.now()).await {
                    Ok(Folded { records, more }) => {
                        let Some(wait) = pause(records, more, began.elapsed()) else {
                            continue;
                        };
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                        // A write during the step or the wait left its permit: no batch is
                        // missed between two steps.
                        let _ = tokio::time::timeout(POLL, written.notified()).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "usage rollups did not advance; retrying");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        }
        .instrument(tracing::info_span!("usage_rollups")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_paces_its_steps_only_while_it_keeps_up() {
        let ms = Duration::from_millis;
        assert_eq!(
            pause(0, false, ms(1)),
            Some(ms(0)),
            "idle: it waits for a write or the poll"
        );
        assert_eq!(pause(500, true, ms(300)), None, "behind: steps back to back");
        assert_eq!(pause(500, false, ms(2)), Some(GAP), "a short step: at least the gap");
        assert_eq!(pause(500, false, ms(30)), Some(ms(360)), "twelve times the step");
        assert_eq!(pause(500, false, ms(300)), Some(PACE_MAX), "never longer than the cap");
    }
}
