//! A key's last use and request count, as command answers show them.
//!
//! Every key command's answer carries them: one query per answer was, under load, one statement
//! per command beside the append. Answers that want them at the same time (the appender answers
//! a whole group at once) are served by one query, like the appends themselves: a reader task
//! takes every request waiting when it is free, with no timer.

use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use sqlx::Row;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Keys per query, at most.
const MAX_BATCH: usize = 64;

pub type KeyUsage = (Option<DateTime<Utc>>, i64);

struct Wanted {
    key_id: String,
    answer: oneshot::Sender<Result<KeyUsage, String>>,
}

/// Cloning shares the reader task.
#[derive(Clone)]
pub struct KeyUsageReader {
    queue: mpsc::Sender<Wanted>,
}

impl KeyUsageReader {
    pub fn spawn(db: Database) -> Self {
        let (queue, wanted) = mpsc::channel(1_024);
        tokio::spawn(run(db, wanted).instrument(tracing::info_span!("key_usage_reader")));
        KeyUsageReader { queue }
    }

    /// `key_id`'s last use and request count from the edge's usage records (none: never used).
    pub async fn get(&self, key_id: String) -> Result<KeyUsage, ProjectionError> {
        let (answer, answered) = oneshot::channel();
        let gone = || ProjectionError::Usage("the key usage reader has stopped".into());
        self.queue.send(Wanted { key_id, answer }).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?.map_err(ProjectionError::Usage)
    }
}

async fn run(db: Database, mut wanted: mpsc::Receiver<Wanted>) {
    while let Some(batch) = keyledger_commands::group::next(&mut wanted, MAX_BATCH).await {
        match read(&db, &batch).await {
            Ok(found) => {
                for w in batch {
                    let usage = found.get(&w.key_id).copied().unwrap_or((None, 0));
                    let _ = w.answer.send(Ok(usage));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for w in batch {
                    let _ = w.answer.send(Err(message.clone()));
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
