//! Waking log readers at once when events are appended, and waiters once read models include
//! them, instead of polling.
//!
//! In-process, the command bus announces each commit and the projection runner each batch.
//! Across nodes sharing PostgreSQL, the append trigger's `pg_notify` and the runner's reach every
//! node's listener at commit.

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::watch;

pub const CHANNEL: &str = "keyledger_events";
/// Carries the position every shared read model has reached, sent by the active runner.
pub const PROJECTED_CHANNEL: &str = "keyledger_projected";

/// The highest log position this node has heard of, and the position all shared read models
/// are known to include. Readers `subscribe()` and wait for a change.
#[derive(Clone)]
pub struct LogWatch {
    tx: watch::Sender<i64>,
    projected: watch::Sender<i64>,
}

impl Default for LogWatch {
    fn default() -> Self {
        let (tx, _) = watch::channel(0);
        let (projected, _) = watch::channel(0);
        LogWatch { tx, projected }
    }
}

fn raise(sender: &watch::Sender<i64>, position: i64) {
    sender.send_if_modified(|seen| {
        if position > *seen {
            *seen = position;
            true
        } else {
            false
        }
    });
}

impl LogWatch {
    pub fn announce(&self, position: i64) {
        raise(&self.tx, position);
    }

    /// Every shared read model includes the log up to `position`.
    pub fn announce_projected(&self, position: i64) {
        raise(&self.projected, position);
    }

    pub fn subscribe_projected(&self) -> watch::Receiver<i64> {
        self.projected.subscribe()
    }

    /// Forces every waiting reader to look at the log (e.g. after a lost listener connection).
    pub fn nudge(&self) {
        self.tx.send_modify(|_| {});
    }

    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.tx.subscribe()
    }

    /// The highest log position this node has heard of.
    pub fn head(&self) -> i64 {
        *self.tx.borrow()
    }

    /// Forwards PostgreSQL notifications until the task is dropped; reconnects on failure.
    pub fn spawn_postgres_listener(&self, pool: PgPool) -> tokio::task::JoinHandle<()> {
        let watch = self.clone();
        let span = tracing::info_span!("event_listener", channel = CHANNEL);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                loop {
                    match listen(&pool, &watch).await {
                        Ok(()) => {}
                        Err(e) => tracing::warn!(error = %e, "event listener lost its connection; reconnecting"),
                    }
                    // Anything appended while we were away is found by a nudged read.
                    watch.nudge();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
            span,
        ))
    }
}

async fn listen(pool: &PgPool, watch: &LogWatch) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CHANNEL, PROJECTED_CHANNEL]).await?;
    watch.nudge();
    loop {
        let note = listener.recv().await?;
        match (note.channel(), note.payload().parse::<i64>()) {
            (PROJECTED_CHANNEL, Ok(position)) => watch.announce_projected(position),
            (_, Ok(position)) => watch.announce(position),
            (_, Err(_)) => watch.nudge(),
        }
    }
}
