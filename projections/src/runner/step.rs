//! One step of a runner: claim the read models, read the next batch of the log once, and apply
//! it to each model with its checkpoint in the same transaction.

use crate::read_models::{decode, Applied, Shared};
use crate::statistics::Statistics;
use crate::{ProjectionError, ReadModel};
use keyledger_commands::log::{self, LoggedEvent};
use keyledger_commands::wake::{LogWatch, PROJECTED_CHANNEL};
use keyledger_commands::{Backend, Database};
use sqlx::{Any, AnyConnection, Executor, Row};

/// Events in a batch: a batch is one transaction, and much of its cost is per aggregate it
/// touches (and per row it writes again, when a key's events fall in two batches), so a backlog
/// is applied in few large ones. A batch that came back full doubles the next, up to
/// `BACKLOG_BATCH`; a caught-up runner's batches are as small as what arrived. On PostgreSQL,
/// 2 000 events per batch caught up at 4 300 events/s, 10 000 at 20 000 events/s, and 50 000
/// rebuilt at 37 000 events/s.
const BATCH: i64 = 10_000;
const BACKLOG_BATCH: i64 = 50_000;

/// The size of the next batch, (in a backlog on PostgreSQL) the next batch itself, read and
/// decoded while the current one is being written, and when the tables it fills are next analysed.
#[derive(Default)]
pub(super) struct Batches {
    grown: Option<i64>,
    ahead: Option<Ahead>,
    statistics: Statistics,
}

struct Ahead {
    from: i64,
    size: i64,
    events: tokio::task::JoinHandle<Result<Vec<Applied>, ProjectionError>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.events.abort();
    }
}

impl Batches {
    fn size(&self) -> i64 {
        self.grown.unwrap_or(BATCH)
    }

    fn next_size(&self) -> i64 {
        (self.size() * 2).min(BACKLOG_BATCH)
    }

    fn after(&mut self, full: bool) {
        self.grown = full.then(|| self.next_size());
    }

    /// The batch after `from`: read ahead if it was, or the events this node appended that
    /// follow `from` (handed over by the appender), or read from the log.
    async fn read<'c>(
        &mut self,
        executor: impl Executor<'c, Database = Any>,
        from: i64,
        watch: &LogWatch,
    ) -> Result<Vec<Applied>, ProjectionError> {
        let size = self.size();
        if self.ahead.is_none() {
            let recent = watch.recent_after(from, size as usize);
            if !recent.is_empty() {
                return recent.into_iter().map(applied).collect();
            }
        }
        match self.ahead.take() {
            Some(mut ahead) if ahead.from == from && ahead.size == size => (&mut ahead.events).await.map_err(|e| {
                ProjectionError::Store(keyledger_commands::StoreError::EventStore(format!(
                    "reading the log ahead failed: {e}"
                )))
            })?,
            _ => read(executor, from, size).await,
        }
    }

    fn read_ahead(&mut self, db: &Database, from: i64) {
        let (db, size) = (db.clone(), self.next_size());
        let events = tokio::spawn(async move { read(db.pool(), from, size).await });
        self.ahead = Some(Ahead { from, size, events });
    }
}

/// Up to `size` events after `from`, decoded.
async fn read<'c>(
    executor: impl Executor<'c, Database = Any>,
    from: i64,
    size: i64,
) -> Result<Vec<Applied>, ProjectionError> {
    log::read_after(executor, from, size)
        .await?
        .into_iter()
        .map(applied)
        .collect()
}

fn applied(logged: LoggedEvent) -> Result<Applied, ProjectionError> {
    Ok(Applied {
        decoded: decode(&logged)?,
        logged,
    })
}

pub(super) enum Step {
    /// Applied events up to `position`; `full`: the batch was as large as asked for, so more
    /// may be waiting.
    Advanced {
        position: i64,
        applied: usize,
        full: bool,
    },
    Idle(i64),
    /// Another node (or a rebuild) is the active writer of every model asked for.
    Busy,
}

pub(super) fn names(models: &[ReadModel]) -> String {
    models
        .iter()
        .map(|m| format!("'{}'", m.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn ensure_checkpoints(db: &Database, models: &[ReadModel]) -> Result<(), ProjectionError> {
    for model in models {
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, position, updated_at_ms) VALUES ($1, 0, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(model.name())
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(db.pool())
        .await?;
    }
    Ok(())
}

/// Locks the checkpoint rows of `models` for the transaction and returns their positions:
/// only those of the models no other node holds.
pub(super) async fn claim(
    conn: &mut AnyConnection,
    backend: Backend,
    models: &[ReadModel],
) -> Result<Vec<(ReadModel, i64)>, ProjectionError> {
    // Names come from the fixed list of read models, never input.
    let list = names(models);
    let rows = match backend {
        Backend::Postgres => {
            // The transaction's commit need not wait for its WAL flush: the rows are derived from
            // the log and commit with their checkpoint, so a commit lost to a crash of PostgreSQL
            // is lost whole and applied again (the events it applied were flushed by their own
            // commit). Set here, in the statement that opens every batch, to cost no round trip.
            sqlx::query(&format!(
                "SELECT name, position, set_config('synchronous_commit', 'off', true) AS flush \
                 FROM projection_checkpoints WHERE name IN ({list}) FOR UPDATE SKIP LOCKED"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Backend::Sqlite => {
            // Writing first takes SQLite's write lock up front (waiting on busy_timeout), so what
            // it reads cannot go stale before our own write.
            sqlx::query(&format!(
                "UPDATE projection_checkpoints SET position = position WHERE name IN ({list}) RETURNING name, position"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get("name")?;
        claimed.push((ReadModel::parse(&name)?, row.try_get::<i64, _>("position")?));
    }
    Ok(claimed)
}

/// The position every shared read model includes, as this transaction sees it.
pub(super) async fn projected(conn: &mut AnyConnection) -> Result<i64, ProjectionError> {
    let row = sqlx::query(&format!(
        "SELECT CAST(COALESCE(MIN(position), 0) AS BIGINT) AS position FROM projection_checkpoints WHERE name IN ({})",
        names(&ReadModel::ALL)
    ))
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("position")?)
}

/// Applies the next batch of the log to every model of `models` that this node can claim. Within
/// a backlog on PostgreSQL, each model gets its own transaction on its own connection, and they
/// run at once while the next batch is read: the audit log's inserts no longer wait for the key
/// tables', and the database works on both cores while this process decodes. Otherwise one
/// transaction holds them all, for one commit per batch.
pub(super) async fn step(
    db: &Database,
    models: &[ReadModel],
    batches: &mut Batches,
    watch: &LogWatch,
) -> Result<Step, ProjectionError> {
    let stepped = advance(db, models, batches, watch).await;
    batches.after(matches!(stepped, Ok(Step::Advanced { full: true, .. })));
    if let Ok(Step::Advanced { applied, .. }) = &stepped {
        // The batch is committed either way: a failed ANALYZE costs plans, not data.
        if let Err(e) = batches.statistics.applied(db, models, *applied).await {
            tracing::warn!(error = %e, "cannot analyse the read models' tables");
        }
    }
    stepped
}

async fn advance(
    db: &Database,
    models: &[ReadModel],
    batches: &mut Batches,
    watch: &LogWatch,
) -> Result<Step, ProjectionError> {
    let batch = batches.size();
    let apart = db.backend() == Backend::Postgres && batch > BATCH && models.len() > 1;
    let _turn = db.write_turn().await;
    // (transaction, models it claimed and where they stood)
    let mut claims = Vec::new();
    if apart {
        for model in models {
            let mut tx = db.derived_pool().begin().await?;
            let claimed = claim(&mut tx, db.backend(), std::slice::from_ref(model)).await?;
            if !claimed.is_empty() {
                claims.push((tx, claimed));
            }
        }
    } else {
        let mut tx = db.derived_pool().begin().await?;
        let claimed = claim(&mut tx, db.backend(), models).await?;
        if !claimed.is_empty() {
            claims.push((tx, claimed));
        }
    }
    let Some(from) = claims.iter().flat_map(|(_, c)| c).map(|(_, p)| *p).min() else {
        return Ok(Step::Busy);
    };
    let events = match claims.as_mut_slice() {
        [(tx, _)] => batches.read(&mut **tx, from, watch).await?,
        _ => batches.read(db.pool(), from, watch).await?,
    };
    let Some(last) = events.last().map(|e| e.logged.position) else {
        // Nothing after the models this step could claim; a model another worker holds may still
        // be in the middle of a batch, so the log is not done until every model is claimed here.
        if claims.iter().map(|(_, c)| c.len()).sum::<usize>() < models.len() {
            return Ok(Step::Busy);
        }
        let mut conn = db.pool().acquire().await?;
        let reached = projected(&mut conn).await?;
        watch.announce_projected(reached);
        return Ok(Step::Idle(from));
    };
    if apart && events.len() as i64 >= batch {
        batches.read_ahead(db, last);
    }
    let all = claims.iter().map(|(_, c)| c.len()).sum::<usize>() == ReadModel::ALL.len();
    let together = claims.len() == 1;
    let commits = claims.into_iter().map(|(mut tx, claimed)| {
        let events = &events;
        async move {
            let announce = together && db.backend() == Backend::Postgres;
            apply(&mut tx, &claimed, events, last, announce && all).await?;
            if announce && !all {
                let reached = projected(&mut tx).await?;
                notify(&mut tx, reached).await?;
            }
            tx.commit().await?;
            Ok::<(), ProjectionError>(())
        }
    });
    futures::future::try_join_all(commits).await?;
    let reached = if all {
        last
    } else {
        let mut conn = db.pool().acquire().await?;
        projected(&mut conn).await?
    };
    if !together {
        let mut conn = db.pool().acquire().await?;
        notify(&mut conn, reached).await?;
    }
    watch.announce_projected(reached);
    tracing::debug!(position = last, applied = events.len(), apart, "read models advanced");
    Ok(Step::Advanced {
        position: last,
        applied: events.len(),
        full: events.len() as i64 >= batch,
    })
}

/// Applies to each of `claimed` the events it lacks, and moves its checkpoint to `last`;
/// `announce`: and tells every node (PostgreSQL) that the read models reached `last`, in the
/// same statement.
async fn apply(
    conn: &mut AnyConnection,
    claimed: &[(ReadModel, i64)],
    events: &[Applied],
    last: i64,
    announce: bool,
) -> Result<(), ProjectionError> {
    let mut shared = Shared::default();
    for (model, position) in claimed {
        // Models can stand at different positions (one was rebuilt): each takes what it lacks.
        let start = events.partition_point(|e| e.logged.position <= *position);
        if start < events.len() {
            model.apply(conn, &events[start..], &mut shared).await?;
        }
    }
    // A model already past this batch (the others are catching up after a rebuild of some) stays
    // where it is: moving it back would apply its events twice.
    let moved = format!(
        "UPDATE projection_checkpoints SET position = $1, updated_at_ms = $2 WHERE name IN ({}) AND position < $1",
        names(&claimed.iter().map(|(m, _)| *m).collect::<Vec<_>>())
    );
    let now = chrono::Utc::now().timestamp_millis();
    if announce {
        sqlx::query(&format!(
            "WITH moved AS ({moved} RETURNING name) SELECT pg_notify($3, $4)"
        ))
        .bind(last)
        .bind(now)
        .bind(PROJECTED_CHANNEL)
        .bind(last.to_string())
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query(&moved).bind(last).bind(now).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Tells every node (PostgreSQL) how far the read models have come: their commands' answers
/// wait for it. Inside a transaction it is delivered at commit.
async fn notify(conn: &mut AnyConnection, reached: i64) -> Result<(), ProjectionError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(PROJECTED_CHANNEL)
        .bind(reached.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
