//! Appending events with group commit.
//!
//! Every command ends in an append, and an append is a commit: an fsync on SQLite, a WAL flush
//! on PostgreSQL, where appends also queue on the advisory lock that orders the global log. One
//! appender task per process therefore takes every append waiting when it is free and commits
//! them together in one transaction, each with its own expected-version check: a conflict fails
//! that append alone. Usually that is one INSERT of every event waiting (on PostgreSQL, one
//! statement in all); only a group with a conflict in it is redone one append at a time.
//! Nothing is acknowledged before its transaction has committed. A committed group's events,
//! with their positions, are handed to this node's log readers ([`crate::wake::Appending`]),
//! which then need not read them back.

use crate::log::{self, LoggedEvent};
use crate::wake::LogWatch;
use crate::{Backend, CommandError, Database, StoreError};
use cqrs_es::persist::SerializedEvent;
use sqlx::AnyConnection;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Appends per transaction, at most.
const MAX_GROUP: usize = 64;

struct Append {
    events: Vec<Encoded>,
    done: oneshot::Sender<Result<i64, CommandError>>,
}

/// The process's one way to write events. Cloning shares the appender task.
#[derive(Clone)]
pub struct Appender {
    queue: mpsc::Sender<Append>,
}

impl Appender {
    pub fn spawn(db: Database, watch: LogWatch) -> Self {
        let (queue, pending) = mpsc::channel(1_024);
        tokio::spawn(run(db, watch, pending).instrument(tracing::info_span!("appender")));
        Appender { queue }
    }

    /// Appends one stream's events, which must carry the sequence numbers that follow the
    /// version they were decided on. Returns a log position at or after them, once committed.
    pub async fn append(&self, events: Vec<SerializedEvent>) -> Result<i64, CommandError> {
        let (done, answer) = oneshot::channel();
        let gone = || CommandError::Store(StoreError::EventStore("the appender has stopped".into()));
        let events = events.into_iter().map(Encoded::from).collect();
        self.queue.send(Append { events, done }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn run(db: Database, watch: LogWatch, mut pending: mpsc::Receiver<Append>) {
    while let Some(group) = crate::group::next(&mut pending, MAX_GROUP).await {
        let size = group.len();
        commit(&db, &watch, group).await;
        metrics::histogram!("keyledger_appends_per_commit").record(size as f64);
    }
}

/// Commits `group` in one transaction and answers each append.
async fn commit(db: &Database, watch: &LogWatch, mut group: Vec<Append>) {
    let turn = db.write_turn().await;
    let appending = watch.appending();
    let result = match together(db, &group).await {
        Ok(Some(positions)) => {
            drop(turn);
            let last = positions.iter().copied().max().unwrap_or(0);
            // Handed over before anyone is answered, so that a reader woken by an answer finds them.
            appending.handed_over(logged(&mut group, &positions));
            for append in group {
                let _ = append.done.send(Ok(last));
            }
            return;
        }
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
                let _ = append.done.send(Err(CommandError::Store(StoreError::shared(&e))));
            }
        }
    }
}

/// An event as its row is written: serialised once, in the command's own task rather than the
/// appender's, and the same text bound in the INSERT and handed over to this node's readers.
struct Encoded {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: String,
}

impl From<SerializedEvent> for Encoded {
    fn from(e: SerializedEvent) -> Self {
        Encoded {
            payload: e.payload.to_string(),
            metadata: e.metadata.to_string(),
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            sequence: e.sequence as i64,
            event_type: e.event_type,
            event_version: e.event_version,
        }
    }
}

/// A committed group's events as the log holds them, taken out of the group (its appends are
/// answered with the position alone). An event whose metadata does not read back is left out:
/// readers then read the log from that position.
fn logged(group: &mut [Append], positions: &[i64]) -> Vec<LoggedEvent> {
    let events = group.iter_mut().flat_map(|a| std::mem::take(&mut a.events));
    events
        .zip(positions)
        .map_while(|(e, &position)| {
            Some(LoggedEvent {
                position,
                metadata: log::parse_metadata(&e.metadata).ok()?,
                aggregate_type: e.aggregate_type,
                aggregate_id: e.aggregate_id,
                sequence: e.sequence,
                event_type: e.event_type,
                event_version: e.event_version,
                payload: e.payload,
            })
        })
        .collect()
}

/// The usual case: every event of the group in one INSERT and its commit. Returns each event's
/// position, in the group's order; `None` on a conflict (some stream position taken, or claimed
/// twice in the group), when nothing is committed, since committing the rest of a group could
/// let an append's next event in without the one before it.
async fn together(db: &Database, group: &[Append]) -> Result<Option<Vec<i64>>, sqlx::Error> {
    let events: Vec<&Encoded> = group.iter().flat_map(|a| &a.events).collect();
    let conflicted = |e: sqlx::Error| if is_conflict(&e) { Ok(None) } else { Err(e) };
    match db.backend() {
        // One statement is its own transaction: a conflict fails all of it, and no BEGIN and
        // COMMIT travel (they were two of the three round trips of a group). A BEFORE trigger
        // draws the positions, so the rows returned carry them.
        Backend::Postgres => {
            let mut conn = db.pool().acquire().await?;
            match insert(&mut conn, db.backend(), &events, RETURNING).await {
                Ok(rows) => positions(&events, &rows).map(Some),
                Err(e) => conflicted(e),
            }
        }
        // Positions are set by an AFTER trigger, which RETURNING does not see. SQLite has one
        // writer and the trigger runs row by row, so the group's positions are the ones just
        // below the head, read in the same transaction.
        Backend::Sqlite => {
            let mut tx = db.pool().begin().await?;
            if let Err(e) = insert(&mut tx, db.backend(), &events, "").await {
                tx.rollback().await?;
                return conflicted(e);
            }
            let head = head(&mut tx).await?;
            tx.commit().await?;
            let first = head - events.len() as i64 + 1;
            Ok(Some((first..=head).collect()))
        }
    }
}

const RETURNING: &str = " RETURNING aggregate_type, aggregate_id, sequence, global_position";

/// Each event's position, from the rows an INSERT returned (in no promised order).
fn positions(events: &[&Encoded], inserted: &[sqlx::any::AnyRow]) -> Result<Vec<i64>, sqlx::Error> {
    let mut drawn = HashMap::with_capacity(inserted.len());
    for row in inserted {
        let at: i64 = sqlx::Row::try_get(row, "global_position")?;
        let aggregate_type: String = sqlx::Row::try_get(row, "aggregate_type")?;
        let aggregate_id: String = sqlx::Row::try_get(row, "aggregate_id")?;
        let sequence: i64 = sqlx::Row::try_get(row, "sequence")?;
        drawn.insert((aggregate_type, aggregate_id, sequence), at);
    }
    events
        .iter()
        .map(|e| {
            let row = (e.aggregate_type.clone(), e.aggregate_id.clone(), e.sequence);
            drawn
                .get(&row)
                .copied()
                .ok_or_else(|| sqlx::Error::Protocol(format!("no position returned for {} {}", row.1, row.2)))
        })
        .collect()
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
        let events: Vec<&Encoded> = append.events.iter().collect();
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
    events: &[&Encoded],
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
            .bind(event.sequence)
            .bind(event.event_type.as_str())
            .bind(event.event_version.as_str())
            .bind(event.payload.as_str())
            .bind(event.metadata.as_str());
    }
    query.fetch_all(&mut *conn).await
}
