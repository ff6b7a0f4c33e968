//! The expiry scheduler: sends the warning and expiry commands when they fall due.

use crate::state::AppState;
use keyledger_projections::ProjectionError;
use std::time::Duration;
use tracing::Instrument;
use uuid::Uuid;

pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = run_once(&state).await {
                    tracing::warn!(error = %e, "expiry check failed; it will run again");
                }
            }
        }
        .instrument(tracing::info_span!("expiry_scheduler")),
    )
}

/// One pass: every key that owes a warning or an expiry gets a `CheckExpiry` command. The
/// aggregate records each warning and the expiry once, so overlapping passes (or nodes) are safe.
pub async fn run_once(state: &AppState) -> Result<usize, ProjectionError> {
    let now = state.clock.now();
    let due = keyledger_projections::key_list::keys_due_for_expiry_check(&state.db, now, 500).await?;
    let mut sent = 0;
    for (stored, _) in &due {
        let key_id = match Uuid::parse_str(stored) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, key_id = %stored, "a stored key id is not a UUID; its expiry is not checked");
                continue;
            }
        };
        match state.bus.check_expiry(key_id).await {
            Ok(()) => sent += 1,
            Err(e) => tracing::warn!(error = %e, %key_id, "expiry check of a key failed"),
        }
    }
    if sent > 0 {
        tracing::info!(keys = sent, "expiry checks sent");
    }
    Ok(sent)
}
