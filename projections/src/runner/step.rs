//! One step of a runner: claim the read models, read the next batch of the log once, and apply
//! it to each model with its checkpoint in the same transaction.

use super::batches::{Batches, BATCH};
use super::deferred;
use crate::read_models::{Applied, Shared};
use crate::{ProjectionError, ReadModel};
use keyledger_commands::wake::{LogWatch, PROJECTED_CHANNEL};
use keyledger_commands::{Backend, Database};
use sqlx::{AnyConnection, Row};

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

/// A read model a transaction holds, as its checkpoint row says under the lock.
pub(super) struct Claimed {
    pub(super) model: ReadModel,
    pub(super) position: i64,
    /// Its query indexes wait for the head (see `deferred`).
    pub(super) deferred: bool,
}

/// Locks the checkpoint rows of `models` for the transaction and returns where they stand:
/// only those of the models no other node holds.
pub(super) async fn claim(
    conn: &mut AnyConnection,
    backend: Backend,
    models: &[ReadModel],
) -> Result<Vec<Claimed>, ProjectionError> {
    // Names come from the fixed list of read models, never input.
    let list = names(models);
    // Read under the same lock as the position, so it is exact whichever node deferred them.
    let deferred = "(SELECT COUNT(*) FROM deferred_indexes d WHERE d.model = projection_checkpoints.name) AS deferred";
    let rows = match backend {
        Backend::Postgres => {
            // The transaction's commit need not wait for its WAL flush: the rows are derived from
            // the log and commit with their checkpoint, so a commit lost to a crash of PostgreSQL
            // is lost whole and applied again (the events it applied were flushed by their own
            // commit). Set here, in the statement that opens every batch, to cost no round trip.
            sqlx::query(&format!(
                "SELECT name, position, {deferred}, set_config('synchronous_commit', 'off', true) AS flush \
                 FROM projection_checkpoints WHERE name IN ({list}) FOR UPDATE SKIP LOCKED"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Backend::Sqlite => {
            // Writing first takes SQLite's write lock up front (waiting on busy_timeout), so what
            // it reads cannot go stale before our own write.
            sqlx::query(&format!(
                "UPDATE projection_checkpoints SET position = position WHERE name IN ({list}) \
                 RETURNING name, position, {deferred}"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        claimed.push(Claimed {
            model: ReadModel::parse(&row.try_get::<String, _>("name")?)?,
            position: row.try_get("position")?,
            deferred: row.try_get::<i64, _>("deferred")? > 0,
        });
    }
    Ok(claimed)
}

/// The position every shared read model includes, as this transaction sees it.
pub(crate) async fn projected(conn: &mut AnyConnection) -> Result<i64, ProjectionError> {
    let row = sqlx::query(&format!(
        "SELECT CAST(COALESCE(MIN(position), 0) AS BIGINT) AS position FROM projection_checkpoints WHERE name IN ({})",
        names(&ReadModel::ALL)
    ))
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("position")?)
}

/// Applies the next batch of the log to every model of `models` that this node can claim. Within
/// a backlog on PostgreSQL, the models get transactions of their own on their own connections
/// (the two key models share one, as they load and fold the same keys), and these run at once
/// while the next batch is read: the audit log's inserts do not wait for the key tables', and
/// the database works on both cores while this process decodes. Otherwise one transaction holds
/// them all, for one commit per batch.
pub(super) async fn step(
    db: &Database,
    models: &[ReadModel],
    batches: &mut Batches,
    watch: &LogWatch,
) -> Result<Step, ProjectionError> {
    let stepped = advance(db, models, batches, watch).await;
    batches.after(matches!(stepped, Ok(Step::Advanced { full: true, .. })));
    if let Ok(Step::Advanced { applied, .. }) = &stepped {
        batches.statistics.applied(db, models, *applied);
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
    let groups = if apart {
        ReadModel::folding_apart(models)
    } else {
        vec![models.to_vec()]
    };
    for group in groups {
        let mut tx = db.derived_pool().begin().await?;
        let claimed = claim(&mut tx, db.backend(), &group).await?;
        if !claimed.is_empty() {
            claims.push((tx, claimed));
        }
    }
    let Some(from) = claims.iter().flat_map(|(_, c)| c).map(|c| c.position).min() else {
        return Ok(Step::Busy);
    };
    let events = match claims.as_mut_slice() {
        [(tx, _)] => batches.read(&mut **tx, from, watch).await?,
        _ => batches.read(db.pool(), from, watch).await?,
    };
    let full = events.len() as i64 >= batch;
    // A model's query indexes wait while it loads a backlog from position 0, and are built in
    // the transaction that brings it to the head: this one, unless the batch came back full.
    let indexes: Vec<Indexes> = claims
        .iter()
        .map(|(_, claimed)| Indexes {
            defer: claimed
                .iter()
                .filter(|c| full && c.position == 0 && !c.deferred && !c.model.query_indexes().is_empty())
                .map(|c| c.model)
                .collect(),
            build: claimed
                .iter()
                .filter(|c| !full && c.deferred)
                .map(|c| c.model)
                .collect(),
        })
        .collect();
    let claimed = claims.iter().map(|(_, c)| c.len()).sum::<usize>();
    let Some(last) = events.last().map(|e| e.logged.position) else {
        for ((mut tx, _), change) in claims.into_iter().zip(&indexes) {
            if !change.build.is_empty() {
                change.build(&mut tx).await?;
                tx.commit().await?;
            }
        }
        // Nothing after the models this step could claim; a model another worker holds may still
        // be in the middle of a batch, so the log is not done until every model is claimed here.
        if claimed < models.len() {
            return Ok(Step::Busy);
        }
        let mut conn = db.pool().acquire().await?;
        let reached = projected(&mut conn).await?;
        watch.announce_projected(reached);
        return Ok(Step::Idle(from));
    };
    if apart && full {
        batches.read_ahead(db, last);
    }
    let all = claimed == ReadModel::ALL.len();
    let together = claims.len() == 1;
    let commits = claims.into_iter().zip(&indexes).map(|((mut tx, claimed), change)| {
        let events = &events;
        async move {
            let announce = together && db.backend() == Backend::Postgres;
            change.defer(&mut tx, db.backend()).await?;
            apply(&mut tx, &claimed, events, last, announce && all).await?;
            change.build(&mut tx).await?;
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
        full,
    })
}

/// What a transaction does to the query indexes of the models it claimed.
struct Indexes {
    /// Drop before loading (see `deferred`).
    defer: Vec<ReadModel>,
    /// Build, having reached the head.
    build: Vec<ReadModel>,
}

impl Indexes {
    async fn defer(&self, conn: &mut AnyConnection, backend: Backend) -> Result<(), ProjectionError> {
        for model in &self.defer {
            deferred::defer(conn, backend, *model).await?;
        }
        Ok(())
    }

    async fn build(&self, conn: &mut AnyConnection) -> Result<(), ProjectionError> {
        for model in &self.build {
            deferred::restore(conn, *model).await?;
        }
        Ok(())
    }
}

/// Applies to each of `claimed` the events it lacks, and moves its checkpoint to `last`;
/// `announce`: and tells every node (PostgreSQL) that the read models reached `last`, in the
/// same statement.
async fn apply(
    conn: &mut AnyConnection,
    claimed: &[Claimed],
    events: &[Applied],
    last: i64,
    announce: bool,
) -> Result<(), ProjectionError> {
    let mut shared = Shared::default();
    for c in claimed {
        // Models can stand at different positions (one was rebuilt): each takes what it lacks.
        let start = events.partition_point(|e| e.logged.position <= c.position);
        if start < events.len() {
            c.model.apply(conn, &events[start..], &mut shared).await?;
        }
    }
    // A model already past this batch (the others are catching up after a rebuild of some) stays
    // where it is: moving it back would apply its events twice.
    let moved = format!(
        "UPDATE projection_checkpoints SET position = $1, updated_at_ms = $2 WHERE name IN ({}) AND position < $1",
        names(&claimed.iter().map(|c| c.model).collect::<Vec<_>>())
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
