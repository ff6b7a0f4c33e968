//! A key's last use and request count, as command answers show them.
//!
//! Every key command's answer carries them: one query per answer was, under load, one statement
//! per command beside the append. Answers that want them at the same time (the appender answers
//! a whole group at once) are served by one query, like the appends themselves: a reader task
//! takes every request waiting when it is free, with no timer. The figures lag the edge anyway
//! (the usage writer flushes every 25 ms), so what was read is reused for a while: until this
//! node writes usage again, and for at most [`REUSE_FOR`] (other nodes' writes).

use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Keys per query, at most.
const MAX_BATCH: usize = 64;
/// How long figures read are reused while this node writes no usage.
pub const REUSE_FOR: Duration = Duration::from_millis(500);
/// Keys remembered, at most; past it the memory starts over.
const REMEMBERED: usize = 10_000;

pub type KeyUsage = (Option<DateTime<Utc>>, i64);

struct Wanted {
    key_id: String,
    answer: oneshot::Sender<Result<KeyUsage, ProjectionError>>,
}

/// Cloning shares the reader task.
#[derive(Clone)]
pub struct KeyUsageReader {
    queue: mpsc::Sender<Wanted>,
    remembered: Arc<Remembered>,
}

/// Figures read, each with when and at which count of this node's usage writes.
#[derive(Default)]
struct Remembered {
    writes: AtomicU64,
    figures: Mutex<HashMap<String, (Instant, u64, KeyUsage)>>,
}

impl Remembered {
    fn fresh(&self, key_id: &str) -> Option<KeyUsage> {
        let writes = self.writes.load(Ordering::Acquire);
        let figures = self.figures.lock().unwrap_or_else(|p| p.into_inner());
        match figures.get(key_id) {
            Some((at, seen, usage)) if *seen == writes && at.elapsed() < REUSE_FOR => Some(*usage),
            _ => None,
        }
    }
}

impl KeyUsageReader {
    pub fn spawn(db: Database) -> Self {
        let (queue, wanted) = mpsc::channel(1_024);
        let remembered = Arc::new(Remembered::default());
        tokio::spawn(run(db, wanted, remembered.clone()).instrument(tracing::info_span!("key_usage_reader")));
        KeyUsageReader { queue, remembered }
    }

    /// This node's usage writer committed: figures read before are stale.
    pub fn written(&self) {
        self.remembered.writes.fetch_add(1, Ordering::AcqRel);
    }

    /// `key_id`'s last use and request count from the edge's usage records (none: never used).
    pub async fn get(&self, key_id: String) -> Result<KeyUsage, ProjectionError> {
        if let Some(usage) = self.remembered.fresh(&key_id) {
            return Ok(usage);
        }
        let (answer, answered) = oneshot::channel();
        let gone = || ProjectionError::Usage("the key usage reader has stopped".into());
        self.queue.send(Wanted { key_id, answer }).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

async fn run(db: Database, mut wanted: mpsc::Receiver<Wanted>, remembered: Arc<Remembered>) {
    while let Some(batch) = keyledger_commands::group::next(&mut wanted, MAX_BATCH).await {
        // Taken before the query: a write committed while it runs makes what it reads stale.
        let (at, writes) = (Instant::now(), remembered.writes.load(Ordering::Acquire));
        match read(&db, &batch).await {
            Ok(found) => {
                let mut figures = remembered.figures.lock().unwrap_or_else(|p| p.into_inner());
                if figures.len() + batch.len() > REMEMBERED {
                    figures.clear();
                }
                for w in batch {
                    let usage = found.get(&w.key_id).copied().unwrap_or((None, 0));
                    figures.insert(w.key_id, (at, writes, usage));
                    let _ = w.answer.send(Ok(usage));
                }
            }
            Err(e) => {
                for w in batch {
                    let _ = w.answer.send(Err(e.told_again()));
                }
            }
        }
    }
}

async fn read(db: &Database, batch: &[Wanted]) -> Result<HashMap<String, KeyUsage>, ProjectionError> {
    let placeholders = (1..=batch.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT key_id, last_used_at_ms, requests FROM key_usage WHERE key_id IN ({placeholders})");
    let mut query = sqlx::query(&sql);
    for w in batch {
        query = query.bind(w.key_id.as_str());
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            let usage = (
                crate::sql::opt_time(r.try_get("last_used_at_ms")?),
                r.try_get("requests")?,
            );
            Ok((r.try_get("key_id")?, usage))
        })
        .collect()
}
