//! Deferred indexes: a read model loaded in bulk from position 0 (a rebuild, a node's first
//! catch-up on a long log) drops the indexes only its queries use, and builds them again in the
//! transaction that brings it to the log's head: one sort per index instead of an index entry
//! per row. Measured on PostgreSQL, the audit log's three query indexes were two thirds of the
//! time of its inserts in a rebuild. Until that transaction commits the model is behind the head,
//! so no read relies on the missing indexes (reads wait until the models include the head).
//!
//! The definitions come from the database's catalogue (the migrations made them) and are kept in
//! `deferred_indexes`, in the transaction that drops them: a crash in between leaves them for
//! whichever runner next brings the model to the head. Each batch's claim of a model says
//! whether its indexes wait, read under the same lock as its position.

use crate::{ProjectionError, ReadModel};
use keyledger_commands::Backend;
use sqlx::{AnyConnection, Row};

/// Drops `model`'s query-only indexes, keeping their definitions.
pub(super) async fn defer(conn: &mut AnyConnection, backend: Backend, model: ReadModel) -> Result<(), ProjectionError> {
    let catalogue = match backend {
        Backend::Postgres => {
            "SELECT indexdef AS definition FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
        }
        Backend::Sqlite => "SELECT sql AS definition FROM sqlite_master WHERE type = 'index' AND name = $1",
    };
    let mut dropped = 0;
    for name in model.query_indexes() {
        // Absent: already deferred (a load that resumed), or dropped by hand.
        let Some(row) = sqlx::query(catalogue).bind(*name).fetch_optional(&mut *conn).await? else {
            continue;
        };
        let definition: String = row.try_get("definition")?;
        sqlx::query("INSERT INTO deferred_indexes (name, model, definition) VALUES ($1, $2, $3)")
            .bind(*name)
            .bind(model.name())
            .bind(definition)
            .execute(&mut *conn)
            .await?;
        // Index names come from the fixed list in ReadModel::query_indexes.
        sqlx::query(&format!("DROP INDEX {name}")).execute(&mut *conn).await?;
        dropped += 1;
    }
    if dropped > 0 {
        tracing::info!(
            model = model.name(),
            indexes = dropped,
            "loading in bulk: query indexes deferred to the head"
        );
    }
    Ok(())
}

/// Builds `model`'s deferred indexes again.
pub(super) async fn restore(conn: &mut AnyConnection, model: ReadModel) -> Result<(), ProjectionError> {
    let rows = sqlx::query("SELECT definition FROM deferred_indexes WHERE model = $1")
        .bind(model.name())
        .fetch_all(&mut *conn)
        .await?;
    let started = std::time::Instant::now();
    for row in &rows {
        sqlx::query(&row.try_get::<String, _>("definition")?)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM deferred_indexes WHERE model = $1")
        .bind(model.name())
        .execute(&mut *conn)
        .await?;
    tracing::info!(
        model = model.name(),
        indexes = rows.len(),
        took_ms = started.elapsed().as_millis() as u64,
        "query indexes built at the head"
    );
    Ok(())
}
