//! The most recent errors (`usage_errors`, spoken to only here): each tenant's newest 1 000
//! records answered 4xx or 5xx, kept by the rollups in the transaction that folds them, so that
//! analytics list the latest errors without reading the raw log.

use crate::rows::{self, Cell};
use crate::sql::Sql;
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use keyledger_domain::usage::{Outcome, StatusClass, UsageEntry, UsageFilter, UsageId, SEQ_SPAN};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// Errors kept a tenant.
pub const KEPT: usize = 1_000;
const INTO: &str = "usage_errors (batch_id, seq, at_ms, tenant, key_id, endpoint_id, plugin, method, path, \
                    status, outcome, latency_us, client_ip)";

fn is_error(e: &UsageEntry) -> bool {
    StatusClass::of(e.status).is_some_and(StatusClass::is_error)
}

/// Keeps the errors among `entries` (newest of the log so far), then trims each tenant they
/// touched to its newest [`KEPT`].
pub(crate) async fn keep(tx: &mut AnyConnection, entries: &[UsageEntry]) -> Result<(), ProjectionError> {
    let mut by_tenant: HashMap<&str, Vec<&UsageEntry>> = HashMap::new();
    // Newest first, so that only each tenant's newest are written from a flood.
    for e in entries.iter().rev().filter(|e| is_error(e)) {
        let kept = by_tenant.entry(e.tenant.as_deref().unwrap_or("")).or_default();
        if kept.len() < KEPT {
            kept.push(e);
        }
    }
    let text = |t: Option<&str>| Cell::from(t.map(str::to_owned));
    let rows: Vec<Vec<Cell>> = by_tenant
        .iter()
        .flat_map(|(tenant, errors)| errors.iter().map(move |e| (*tenant, *e)))
        .map(|(tenant, e)| {
            vec![
                e.id.batch.into(),
                e.id.seq.into(),
                e.at.timestamp_millis().into(),
                tenant.into(),
                text(e.key_id.as_deref()),
                text(e.endpoint_id.as_deref()),
                text(e.plugin.as_deref()),
                e.method.as_str().into(),
                e.path.as_str().into(),
                i64::from(e.status).into(),
                e.outcome.recorded().into(),
                e.latency_us.into(),
                text(e.client_ip.as_deref()),
            ]
        })
        .collect();
    rows::insert(tx, INTO, "ON CONFLICT (batch_id, seq) DO NOTHING", rows).await?;
    for tenant in by_tenant.keys() {
        sqlx::query(&format!(
            "DELETE FROM usage_errors WHERE tenant = $1 AND batch_id * {SEQ_SPAN} + seq < \
             (SELECT batch_id * {SEQ_SPAN} + seq FROM usage_errors WHERE tenant = $1 \
              ORDER BY batch_id DESC, seq DESC LIMIT 1 OFFSET {})",
            KEPT - 1
        ))
        .bind(*tenant)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

pub(crate) async fn clear(tx: &mut AnyConnection) -> Result<(), ProjectionError> {
    sqlx::query("DELETE FROM usage_errors").execute(&mut *tx).await?;
    Ok(())
}

/// Forgets errors older than `horizon` (the raw records' retention).
pub(crate) async fn forget_before(db: &Database, horizon: i64) -> Result<u64, ProjectionError> {
    let _turn = db.write_turn().await;
    Ok(sqlx::query("DELETE FROM usage_errors WHERE at_ms < $1")
        .bind(horizon)
        .execute(db.pool())
        .await?
        .rows_affected())
}

/// The newest `limit` errors since `from` that `filter` wants, newest first.
pub async fn recent(
    db: &Database,
    filter: &UsageFilter,
    from: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<UsageEntry>, ProjectionError> {
    let mut sql = Sql::new(
        "SELECT batch_id, seq, at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, outcome, \
         latency_us, client_ip FROM usage_errors WHERE at_ms >= ",
    );
    sql.bind_int(from.timestamp_millis());
    super::filtered(&mut sql, filter);
    sql.push(" ORDER BY batch_id DESC, seq DESC LIMIT ").bind_int(limit);
    let mut recent = Vec::new();
    for row in sql.fetch_all(db).await? {
        let outcome: String = row.try_get("outcome")?;
        let (Some(id), Ok(outcome), Some(at)) = (
            UsageId::new(row.try_get("batch_id")?, row.try_get("seq")?),
            Outcome::from_recorded(&outcome),
            DateTime::from_timestamp_millis(row.try_get("at_ms")?),
        ) else {
            tracing::warn!(outcome, "a kept error that does not read back is left out");
            continue;
        };
        let tenant: String = row.try_get("tenant")?;
        recent.push(UsageEntry {
            id,
            at,
            tenant: (!tenant.is_empty()).then(|| tenant.into()),
            key_id: row.try_get::<Option<String>, _>("key_id")?.map(Into::into),
            endpoint_id: row.try_get::<Option<String>, _>("endpoint_id")?.map(Into::into),
            plugin: row.try_get::<Option<String>, _>("plugin")?.map(Into::into),
            method: row.try_get("method")?,
            path: row.try_get("path")?,
            status: u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or(0),
            outcome,
            latency_us: row.try_get("latency_us")?,
            client_ip: row.try_get("client_ip")?,
        });
    }
    Ok(recent)
}
