//! Appending events with group commit.
//!
//! Every command ends in an append, and an append is a commit: an fsync on SQLite, a WAL flush
//! on PostgreSQL, where appends also queue on the advisory lock that orders the global log. One
//! appender task per process therefore takes every append waiting when it is free and commits
//! them together in one transaction, each with its own expected-version check: a conflict fails
//! that append alone. Usually that is one INSERT of every event waiting; only a group with a
//! conflict in it is redone one append at a time. Nothing is acknowledged before its transaction
//! has committed.

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
    let result = match together(db, &group).await {
        Ok(Some(position)) => Ok(group.iter().map(|_| Ok(position)).collect()),
        // Some append conflicted, and nothing was committed: find out which, one at a time.
        Ok(None) => one_by_one(db, &group).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(outcomes) => {
            for (append, outcome) in group.into_iter().zip(outcomes) {
                let _ = append.done.send(outcome);
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

/// The usual case: every event of the group in one INSERT that skips rows whose stream
/// position is taken, and the commit. `None` when some were (a conflict): then nothing is
/// committed, since skipping one event of an append could let its next one in.
async fn together(db: &Database, group: &[Append]) -> Result<Option<i64>, sqlx::Error> {
    let events: Vec<&SerializedEvent> = group.iter().flat_map(|a| &a.events).collect();
    let mut tx = db.pool().begin().await?;
    let inserted = match insert(
        &mut tx,
        db.backend(),
        &events,
        " ON CONFLICT DO NOTHING RETURNING global_position",
    )
    .await
    {
        Ok(rows) => rows,
        // Two appends of the group claiming the same stream position.
        Err(e) if is_conflict(&e) => Vec::new(),
        Err(e) => return Err(e),
    };
    if inserted.len() != events.len() {
        tx.rollback().await?;
        return Ok(None);
    }
    let position = match db.backend() {
        // Drawn by a BEFORE trigger: the rows returned carry their positions.
        Backend::Postgres => {
            let mut last = 0;
            for row in &inserted {
                last = last.max(sqlx::Row::try_get::<i64, _>(row, "global_position")?);
            }
            last
        }
        // Set by an AFTER trigger, which RETURNING does not see; the head is one in-process read.
        Backend::Sqlite => head(&mut tx).await?,
    };
    tx.commit().await?;
    Ok(Some(position))
}

/// Each append of `group` with its own expected-version check: a conflict fails that append
/// alone.
async fn one_by_one(db: &Database, group: &[Append]) -> Result<Vec<Result<i64, CommandError>>, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let mut outcomes = Vec::with_capacity(group.len());
    let savepoints = db.backend() == Backend::Postgres;
    for append in group {
        // On PostgreSQL a failed statement fails its transaction, unless it ran under a
        // savepoint; SQLite undoes only the failed statement.
        if savepoints {
            sqlx::query("SAVEPOINT append").execute(&mut *tx).await?;
        }
        let events: Vec<&SerializedEvent> = append.events.iter().collect();
        match insert(&mut tx, db.backend(), &events, "").await {
            Ok(_) => {
                if savepoints {
                    sqlx::query("RELEASE SAVEPOINT append").execute(&mut *tx).await?;
                }
                outcomes.push(true);
            }
            Err(e) if is_conflict(&e) => {
                if savepoints {
                    sqlx::query("ROLLBACK TO SAVEPOINT append").execute(&mut *tx).await?;
                }
                outcomes.push(false);
            }
            Err(e) => return Err(e),
        }
    }
    let position = head(&mut tx).await?;
    tx.commit().await?;
    Ok(outcomes
        .into_iter()
        .map(|ok| if ok { Ok(position) } else { Err(CommandError::Conflict) })
        .collect())
}

/// The log's head as this transaction sees it: at or after everything it appended.
async fn head(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    crate::log::head(&mut *conn).await.map_err(|e| match e {
        StoreError::Database(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    })
}

fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Inserts `events` in one statement followed by `tail`; returns what a `RETURNING` tail
/// returned.
async fn insert(
    conn: &mut AnyConnection,
    backend: Backend,
    events: &[&SerializedEvent],
    tail: &str,
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    let mut sql = String::from(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ",
    );
    for i in 0..events.len() {
        let n = i * 7;
        sql.push_str(if i == 0 { "(" } else { ", (" });
        // PostgreSQL's columns are json: text parameters need a cast there (and only there:
        // SQLite would read CAST(... AS json) as a number).
        match backend {
            Backend::Postgres => sql.push_str(&format!(
                "${}, ${}, ${}, ${}, ${}, CAST(${} AS json), CAST(${} AS json))",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7
            )),
            Backend::Sqlite => sql.push_str("?, ?, ?, ?, ?, ?, ?)"),
        }
    }
    sql.push_str(tail);
    let mut query = sqlx::query(&sql);
    for event in events {
        query = query
            .bind(event.aggregate_type.as_str())
            .bind(event.aggregate_id.as_str())
            .bind(event.sequence as i64)
            .bind(event.event_type.as_str())
            .bind(event.event_version.as_str())
            .bind(event.payload.to_string())
            .bind(event.metadata.to_string());
    }
    query.fetch_all(&mut *conn).await
}
