//! Waking log readers at once when events are appended, and waiters once read models include
//! them, instead of polling.
//!
//! In-process, the appender announces each commit with its events and the projection runner
//! each batch. Across nodes sharing PostgreSQL, the append trigger's `pg_notify` and the
//! runner's reach every node's listener at commit.

use crate::log::LoggedEvent;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub const CHANNEL: &str = "keyledger_events";
/// Carries the position every shared read model has reached, sent by the active runner.
pub const PROJECTED_CHANNEL: &str = "keyledger_projected";

/// Events this node appended lately, kept for its log readers.
const RECENT: usize = 4_096;

/// The highest log position this node has heard of, and the position all shared read models
/// are known to include. Readers `subscribe()` and wait for a change.
///
/// It also keeps the events this node appended lately, so that a reader whose position they
/// follow takes them from memory instead of reading them back from the database: on a busy
/// node, that read was one more statement per command.
#[derive(Clone)]
pub struct LogWatch {
    tx: watch::Sender<i64>,
    projected: watch::Sender<i64>,
    recent: Arc<Mutex<BTreeMap<i64, LoggedEvent>>>,
    /// Appends of this node between their statement and their hand-over.
    appending: Arc<AtomicUsize>,
    /// The highest position PostgreSQL told of while an append of this node was in flight, held
    /// back until that append ends (0: none).
    held: Arc<AtomicI64>,
}

impl Default for LogWatch {
    fn default() -> Self {
        let (tx, _) = watch::channel(0);
        let (projected, _) = watch::channel(0);
        LogWatch {
            tx,
            projected,
            recent: Default::default(),
            appending: Default::default(),
            held: Default::default(),
        }
    }
}

/// Held by the appender from before its statement until it has handed the events over
/// ([`Appending::handed_over`]). PostgreSQL's notification of the commit can reach this node
/// before the hand-over, and a reader woken by it would find the events missing from memory and
/// read them back from the log: so positions heard meanwhile are held back until the append
/// ends. Dropped without a hand-over (a conflict, a failure), it wakes readers to read the log.
pub struct Appending {
    watch: LogWatch,
    handed_over: bool,
}

impl Appending {
    pub fn handed_over(mut self, events: Vec<LoggedEvent>) {
        self.watch.announce_events(events);
        self.handed_over = true;
    }
}

impl Drop for Appending {
    fn drop(&mut self) {
        // Counted down first: a position heard from now on is not held (see `heard`).
        self.watch.appending.fetch_sub(1, Ordering::AcqRel);
        self.watch.release_held();
        if !self.handed_over {
            self.watch.nudge();
        }
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

    /// Events this node has just committed, with their positions: kept for readers, then
    /// announced.
    pub fn announce_events(&self, events: Vec<LoggedEvent>) {
        let Some(last) = events.iter().map(|e| e.position).max() else {
            return;
        };
        if let Ok(mut recent) = self.recent.lock() {
            for event in events {
                recent.insert(event.position, event);
            }
            while recent.len() > RECENT {
                recent.pop_first();
            }
        }
        self.announce(last);
    }

    /// The events right after `position` that this node appended lately, up to `limit`, as long
    /// as they follow each other without a gap: a gap is someone else's event (another node's, or
    /// a position an aborted append used up) that only the log has.
    pub fn recent_after(&self, position: i64, limit: usize) -> Vec<LoggedEvent> {
        let Ok(recent) = self.recent.lock() else {
            return Vec::new();
        };
        (position + 1..)
            .zip(recent.range(position + 1..))
            .take_while(|(next, (at, _))| *at == next)
            .take(limit)
            .map(|(_, (_, event))| event.clone())
            .collect()
    }

    /// An append of this node is starting: see [`Appending`].
    pub fn appending(&self) -> Appending {
        self.appending.fetch_add(1, Ordering::AcqRel);
        Appending {
            watch: self.clone(),
            handed_over: false,
        }
    }

    /// A position PostgreSQL told of: announced, or held back while an append of this node is in
    /// flight (it may be that append's own commit; see [`Appending`]).
    pub fn heard(&self, position: i64) {
        self.held.fetch_max(position, Ordering::AcqRel);
        // Checked after holding: an append that ended in between has released before we held.
        if self.appending.load(Ordering::Acquire) == 0 {
            self.release_held();
        }
    }

    fn release_held(&self) {
        let held = self.held.swap(0, Ordering::AcqRel);
        if held > 0 {
            self.announce(held);
        }
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
            (_, Ok(position)) => watch.heard(position),
            (_, Err(_)) => watch.nudge(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: i64) -> LoggedEvent {
        LoggedEvent {
            position,
            aggregate_type: "ApiKey".into(),
            aggregate_id: "k".into(),
            sequence: position,
            event_type: "KeyChanged".into(),
            event_version: "1.0".into(),
            payload: "null".into(),
            metadata: Default::default(),
        }
    }

    #[test]
    fn recent_events_are_handed_out_only_without_a_gap() {
        let watch = LogWatch::default();
        watch.announce_events(vec![event(3), event(4)]);
        watch.announce_events(vec![event(6)]);
        assert_eq!(watch.head(), 6);
        let positions =
            |after, limit| -> Vec<i64> { watch.recent_after(after, limit).iter().map(|e| e.position).collect() };
        assert_eq!(positions(2, 10), [3, 4], "5 is someone else's: only the log has it");
        assert_eq!(positions(2, 1), [3]);
        assert!(positions(1, 10).is_empty(), "2 is not known here");
        assert_eq!(positions(5, 10), [6]);
        assert!(positions(6, 10).is_empty());
    }

    #[test]
    fn the_oldest_recent_events_make_room() {
        let watch = LogWatch::default();
        watch.announce_events((1..=RECENT as i64 + 10).map(event).collect());
        assert!(watch.recent_after(0, 10).is_empty());
        assert_eq!(watch.recent_after(10, 1)[0].position, 11);
    }

    #[test]
    fn a_reader_told_of_an_append_first_is_woken_by_its_hand_over() {
        let watch = LogWatch::default();
        let mut reader = watch.subscribe();
        reader.borrow_and_update();
        let appending = watch.appending();
        // PostgreSQL's notification of the commit comes first: held back, nobody woken.
        watch.heard(1);
        assert!(!reader.has_changed().unwrap());
        assert_eq!(watch.head(), 0);
        appending.handed_over(vec![event(1)]);
        assert!(reader.has_changed().unwrap(), "woken by the hand-over");
        assert_eq!(watch.head(), 1);
        assert_eq!(watch.recent_after(0, 10).len(), 1, "and the events are in memory");
    }

    #[test]
    fn a_failed_append_wakes_its_waiting_readers_and_releases_what_it_held() {
        let watch = LogWatch::default();
        let mut reader = watch.subscribe();
        reader.borrow_and_update();
        let appending = watch.appending();
        watch.heard(7);
        drop(appending);
        assert!(reader.has_changed().unwrap(), "a waiting reader reads the log instead");
        assert_eq!(watch.head(), 7);
        assert!(watch.recent_after(0, 10).is_empty());
    }

    #[test]
    fn positions_heard_without_an_append_in_flight_are_announced_at_once() {
        let watch = LogWatch::default();
        watch.heard(3);
        assert_eq!(watch.head(), 3);
    }
}
