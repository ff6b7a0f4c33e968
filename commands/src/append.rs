//! Appending events with group commit.
//!
//! Every command ends in an append, and an append is a commit: an fsync on SQLite, a WAL flush
//! on PostgreSQL, where appends also queue on the advisory lock that orders the global log. One
//! appender task per process therefore takes every append waiting when it is free and commits
//! them together in one transaction, each with its own expected-version check: a conflict fails
//! that append alone. Nothing is acknowledged before its transaction has committed.

use crate::{Backend, CommandError, Database, StoreError};
use cqrs_es::persist::SerializedEvent;
use sqlx::AnyConnection;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Appends per transaction, at most.
const MAX_GROUP: usize = 64;

struct Append {
    events: Vec<SerializedEvent>,
    done: oneshot::Sender<Result<i64, CommandError>>,
}

/// The process's one way to write events. Cloning shares the appender task.
#[derive(Clone)]
pub struct Appender {
    queue: mpsc::Sender<Append>,
}

impl Appender {
    pub fn spawn(db: Database) -> Self {
        let (queue, pending) = mpsc::channel(1_024);
        tokio::spawn(run(db, pending).instrument(tracing::info_span!("appender")));
        Appender { queue }
    }

    /// Appends one stream's events, which must carry the sequence numbers that follow the
    /// version they were decided on. Returns a log position at or after them, once committed.
    pub async fn append(&self, events: Vec<SerializedEvent>) -> Result<i64, CommandError> {
        let (done, answer) = oneshot::channel();
        let gone = || CommandError::Store(StoreError::EventStore("the appender has stopped".into()));
        self.queue.send(Append { events, done }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn run(db: Database, mut pending: mpsc::Receiver<Append>) {
    while let Some(first) = pending.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match pending.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let size = group.len();
        commit(&db, group).await;
        metrics::histogram!("keyledger_appends_per_commit").record(size as f64);
    }
}

/// Commits `group` in one transaction and answers each append.
async fn commit(db: &Database, group: Vec<Append>) {
    let _turn = db.write_turn().await;
    let mut outcomes: Vec<Result<(), CommandError>> = Vec::with_capacity(group.len());
    let result = async {
        let mut tx = db.pool().begin().await?;
        let savepoints = db.backend() == Backend::Postgres;
        for append in &group {
            // On PostgreSQL a failed statement fails its transaction, unless it ran under a
            // savepoint; SQLite undoes only the failed statement.
            if savepoints {
                sqlx::query("SAVEPOINT append").execute(&mut *tx).await?;
            }
            match insert(&mut tx, db.backend(), &append.events).await {
                Ok(()) => {
                    if savepoints {
                        sqlx::query("RELEASE SAVEPOINT append").execute(&mut *tx).await?;
                    }
                    outcomes.push(Ok(()));
                }
                Err(e) if is_conflict(&e) => {
                    if savepoints {
                        sqlx::query("ROLLBACK TO SAVEPOINT append").execute(&mut *tx).await?;
                    }
                    outcomes.push(Err(CommandError::Conflict));
                }
                Err(e) => return Err(e),
            }
        }
        let position = crate::log::head(&mut *tx).await.map_err(|e| match e {
            StoreError::Database(e) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        })?;
        tx.commit().await?;
        Ok::<i64, sqlx::Error>(position)
    }
    .await;
    match result {
        Ok(position) => {
            for (append, outcome) in group.into_iter().zip(outcomes) {
                let _ = append.done.send(outcome.map(|()| position));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, appends = group.len(), "an append transaction failed");
            for append in group {
                let _ = append
                    .done
                    .send(Err(CommandError::Store(StoreError::EventStore(e.to_string()))));
            }
        }
    }
}

fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

async fn insert(conn: &mut AnyConnection, backend: Backend, events: &[SerializedEvent]) -> Result<(), sqlx::Error> {
    // PostgreSQL's columns are json: text parameters need a cast there (and only there: SQLite
    // would read CAST(... AS json) as a number).
    let sql = match backend {
        Backend::Postgres => {
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             VALUES ($1, $2, $3, $4, $5, CAST($6 AS json), CAST($7 AS json))"
        }
        Backend::Sqlite => {
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        }
    };
    for event in events {
        sqlx::query(sql)
            .bind(event.aggregate_type.as_str())
            .bind(event.aggregate_id.as_str())
            .bind(event.sequence as i64)
            .bind(event.event_type.as_str())
            .bind(event.event_version.as_str())
            .bind(event.payload.to_string())
            .bind(event.metadata.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
