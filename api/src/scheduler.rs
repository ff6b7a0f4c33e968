//! The expiry scheduler: sends the warning and expiry commands when they fall due; and the
//! alert evaluator, which judges usage alert rules.

use crate::state::AppState;
use keyledger_projections::ProjectionError;
use std::time::Duration;
use tracing::Instrument;
use uuid::Uuid;

pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    repeat(every, tracing::info_span!("expiry_scheduler"), move || {
        let state = state.clone();
        async move {
            if let Err(e) = run_once(&state).await {
                tracing::warn!(error = %e, "expiry check failed; it will run again");
            }
        }
    })
}

/// Runs `pass` every `every`, one pass at a time, in `span`.
fn repeat<F, Fut>(every: Duration, span: tracing::Span, mut pass: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                pass().await;
            }
        }
        .instrument(span),
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

/// Judges every usage alert rule each `every` (README: Usage alerts).
pub fn spawn_alerts(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    repeat(every, tracing::info_span!("alert_evaluator"), move || {
        let state = state.clone();
        async move {
            match crate::operations::alert_rules::evaluate(&state).await {
                Ok(0) => {}
                Ok(fired) => tracing::info!(fired, "usage alerts fired"),
                Err(e) => tracing::warn!(error = %e, "judging alert rules failed; it will run again"),
            }
        }
    })
}
