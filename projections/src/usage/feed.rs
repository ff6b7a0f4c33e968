//! Live usage: each node tails the stored usage log (every node's batches, in commit order) and
//! hands each new record to the subscribers whose filter wants it, within the writer's 25 ms
//! and this tail's wake-up: at once for this node's batches, within [`POLL`] for other nodes'.
//!
//! A subscriber has a queue of its own, offered to without waiting: one that does not keep up
//! loses records rather than slowing the tail, the edge or anyone else, and is told how many of
//! the records it asked for it lost. A subscription says from which batch on it is live, so
//! that what came before can be replayed from the log without a gap or a record twice.

use super::log;
use crate::ProjectionError;
use futures::Stream;
use keyledger_commands::Database;
use keyledger_domain::usage::{UsageEntry, UsageFilter, UsageId};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

/// How often the tail looks for other nodes' batches.
pub const POLL: Duration = Duration::from_millis(250);
/// Batches read at once, by the tail and by a replay.
const BATCHES_PER_READ: i64 = 16;
/// Records a subscriber may have waiting; beyond, it lags.
pub const QUEUE: usize = 4_096;

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum FeedItem {
    Entry(Arc<UsageEntry>),
    /// `skipped` records that the subscriber's filter wanted were dropped because its queue was
    /// full; the next entry follows them.
    Lagged {
        skipped: u64,
    },
}

#[derive(Clone)]
pub struct UsageFeed {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Notify,
}

struct State {
    /// Every batch up to this one has been handed out.
    position: i64,
    subscribers: Vec<Subscriber>,
}

struct Subscriber {
    filter: UsageFilter,
    queue: mpsc::Sender<FeedItem>,
    /// Wanted records dropped since the last lag notice.
    skipped: u64,
}

impl Subscriber {
    fn offer(&mut self, item: FeedItem) {
        if !self.tell_lag() || self.queue.try_send(item).is_err() {
            self.skipped += 1;
            metrics::counter!("keyledger_usage_stream_skipped_total").increment(1);
        }
    }

    /// Sends a pending lag notice; false while the queue has no room for it.
    fn tell_lag(&mut self) -> bool {
        if self.skipped == 0 {
            return true;
        }
        let told = self.queue.try_send(FeedItem::Lagged { skipped: self.skipped }).is_ok();
        if told {
            self.skipped = 0;
        }
        told
    }
}

/// One subscriber's live records: everything after batch `live_after` that its filter wants.
pub struct Subscription {
    pub live_after: i64,
    pub items: mpsc::Receiver<FeedItem>,
}

impl UsageFeed {
    /// Starts the tail at the log's end: records stored before are replayed from the log.
    pub async fn start(db: Database) -> Result<(UsageFeed, tokio::task::JoinHandle<()>), ProjectionError> {
        let feed = UsageFeed {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    position: log::last_batch(&db).await?,
                    subscribers: Vec::new(),
                }),
                wake: Notify::new(),
            }),
        };
        let tail = feed.clone();
        let task = tokio::spawn(
            async move {
                loop {
                    match tail.step(&db).await {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "the usage feed could not read the log; retrying"),
                    }
                    tokio::select! {
                        _ = tail.shared.wake.notified() => {}
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
            }
            .instrument(tracing::info_span!("usage_feed")),
        );
        Ok((feed, task))
    }

    /// This node's usage writer committed a batch: look now rather than at the next poll.
    pub fn written(&self) {
        self.shared.wake.notify_one();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still holds consistent state.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self, filter: UsageFilter) -> Subscription {
        let (queue, items) = mpsc::channel(QUEUE);
        let mut state = self.state();
        state.subscribers.push(Subscriber {
            filter,
            queue,
            skipped: 0,
        });
        metrics::gauge!("keyledger_usage_stream_subscribers").set(state.subscribers.len() as f64);
        Subscription {
            live_after: state.position,
            items,
        }
    }

    /// Hands out the next batches; true when there are more to read at once.
    async fn step(&self, db: &Database) -> Result<bool, ProjectionError> {
        let last = log::last_batch(db).await?;
        let from = {
            let mut state = self.state();
            state.subscribers.retain(|s| !s.queue.is_closed());
            metrics::gauge!("keyledger_usage_stream_subscribers").set(state.subscribers.len() as f64);
            for s in &mut state.subscribers {
                s.tell_lag();
            }
            if state.subscribers.is_empty() {
                // No one to read for: a subscriber who comes replays from the log.
                state.position = state.position.max(last);
                return Ok(false);
            }
            state.position
        };
        if last <= from {
            return Ok(false);
        }
        let mut conn = db.pool().acquire().await?;
        let Some(upto) = log::page_end(&mut conn, from, last, BATCHES_PER_READ).await? else {
            self.state().position = last;
            return Ok(false);
        };
        let (entries, _) = log::entries(&mut conn, UsageId::after_batch(from), upto, log::Texts::All).await?;
        drop(conn);
        let mut state = self.state();
        for entry in entries {
            let entry = Arc::new(entry);
            for s in state.subscribers.iter_mut().filter(|s| s.filter.matches(&entry)) {
                s.offer(FeedItem::Entry(entry.clone()));
            }
        }
        // Subscribers who came while the batches were read were told they are live after
        // `from`, and have just been given them.
        state.position = upto;
        metrics::gauge!("keyledger_usage_feed_batch").set(upto as f64);
        Ok(upto < last)
    }

    /// The records after `after` (none: from now on) that `filter` wants: first those stored,
    /// read from the log, then live ones; in log order, each once. Ends only on an error.
    pub fn stream(
        &self,
        db: Database,
        filter: UsageFilter,
        after: Option<UsageId>,
    ) -> impl Stream<Item = Result<FeedItem, ProjectionError>> + Send + 'static {
        let subscription = self.subscribe(filter.clone());
        let start = match after {
            Some(after) => Replay::Reading { after },
            None => Replay::Done {
                last: UsageId::after_batch(subscription.live_after),
            },
        };
        futures::stream::unfold(
            (start, subscription, db, filter, std::collections::VecDeque::new()),
            |(mut replay, mut sub, db, filter, mut ready)| async move {
                loop {
                    if let Some(entry) = ready.pop_front() {
                        return Some((Ok(FeedItem::Entry(Arc::new(entry))), (replay, sub, db, filter, ready)));
                    }
                    match replay {
                        Replay::Reading { after } => match stored(&db, after, sub.live_after, &filter).await {
                            Ok((read, next)) => {
                                replay = next;
                                ready.extend(read);
                            }
                            Err(e) => return Some((Err(e), (Replay::Failed, sub, db, filter, ready))),
                        },
                        Replay::Done { last } => {
                            let item = sub.items.recv().await?;
                            if let FeedItem::Entry(entry) = &item {
                                if entry.id <= last {
                                    continue;
                                }
                                replay = Replay::Done { last: entry.id };
                            }
                            return Some((Ok(item), (replay, sub, db, filter, ready)));
                        }
                        Replay::Failed => return None,
                    }
                }
            },
        )
    }
}

enum Replay {
    /// Reading the stored records after `after`.
    Reading {
        after: UsageId,
    },
    /// Live; records up to `last` were given.
    Done {
        last: UsageId,
    },
    Failed,
}

/// A page of the stored records after `after`, up to batch `upto`, that `filter` wants, and
/// where the replay goes next.
async fn stored(
    db: &Database,
    after: UsageId,
    upto: i64,
    filter: &UsageFilter,
) -> Result<(Vec<UsageEntry>, Replay), ProjectionError> {
    let mut conn = db.pool().acquire().await?;
    let from = if after.is_last_of_batch() {
        after.batch
    } else {
        after.batch - 1
    };
    let Some(end) = log::page_end(&mut conn, from, upto, BATCHES_PER_READ).await? else {
        return Ok((
            Vec::new(),
            Replay::Done {
                last: after.max(UsageId::after_batch(upto)),
            },
        ));
    };
    let (mut read, _) = log::entries(&mut conn, after, end, log::Texts::All).await?;
    read.retain(|e| filter.matches(e));
    let last = UsageId::after_batch(end);
    let next = if end >= upto {
        Replay::Done { last: after.max(last) }
    } else {
        Replay::Reading { after: after.max(last) }
    };
    Ok((read, next))
}
