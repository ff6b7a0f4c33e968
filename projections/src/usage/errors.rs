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
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Errors kept a tenant.
pub const KEPT: usize = 1_000;
const INTO: &str = "usage_errors (batch_id, seq, at_ms, tenant, key_id, endpoint_id, plugin, method, path, \
                    status, outcome, latency_us, client_ip)";

/// Whether a record answered with `status` is an error these keep.
pub(crate) fn kept(status: u16) -> bool {
    StatusClass::of(status).is_some_and(StatusClass::is_error)
}

/// A step's errors to keep, offered in log order: each tenant's newest [`KEPT`] of them. A
/// flood's step holds a thousand a tenant, not all it read.
#[derive(Default)]
pub(crate) struct Kept(HashMap<Option<Arc<str>>, VecDeque<UsageEntry>>);

impl Kept {
    pub(crate) fn offer(&mut self, entry: UsageEntry) {
        if !kept(entry.status) {
            return;
        }
        let newest = self.0.entry(entry.tenant.clone()).or_default();
        if newest.len() == KEPT {
            newest.pop_front();
        }
        newest.push_back(entry);
    }
}

/// Writes the errors `kept` holds (newest of the log so far), then trims each tenant they
/// touched to its newest [`KEPT`].
pub(crate) async fn keep(tx: &mut AnyConnection, kept: Kept) -> Result<(), ProjectionError> {
    fn tenant(t: &Option<Arc<str>>) -> &str {
        t.as_deref().unwrap_or("")
    }
    let text = |t: Option<&str>| Cell::from(t.map(str::to_owned));
    let rows: Vec<Vec<Cell>> = kept
        .0
        .iter()
        .flat_map(|(t, errors)| errors.iter().map(move |e| (tenant(t), e)))
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
    for tenant in kept.0.keys().map(tenant) {
        sqlx::query(&format!(
            "DELETE FROM usage_errors WHERE tenant = $1 AND batch_id * {SEQ_SPAN} + seq < \
             (SELECT batch_id * {SEQ_SPAN} + seq FROM usage_errors WHERE tenant = $1 \
              ORDER BY batch_id DESC, seq DESC LIMIT 1 OFFSET {})",
            KEPT - 1
        ))
        .bind(tenant)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(seq: i64, tenant: &str, status: u16) -> UsageEntry {
        UsageEntry {
            id: UsageId::new(1, seq).unwrap(),
            at: DateTime::from_timestamp_millis(seq).unwrap(),
            tenant: Some(tenant.into()),
            key_id: None,
            endpoint_id: None,
            plugin: None,
            method: "GET".into(),
            path: "/".into(),
            status,
            outcome: if status < 400 {
                Outcome::Valid
            } else {
                Outcome::InvalidKey
            },
            latency_us: 1,
            client_ip: None,
        }
    }

    #[test]
    fn a_step_holds_each_tenants_newest_errors_and_no_successes() {
        let mut kept = Kept::default();
        for seq in 0..1_005 {
            kept.offer(answered(seq, "a", 401));
        }
        for seq in 2_000..2_003 {
            kept.offer(answered(seq, "b", 503));
        }
        kept.offer(answered(3_000, "a", 200));
        kept.offer(answered(3_001, "c", 204));
        let seqs = |tenant: &str| -> Vec<i64> {
            let tenant: Option<Arc<str>> = Some(tenant.into());
            kept.0
                .get(&tenant)
                .map_or_else(Vec::new, |e| e.iter().map(|e| e.id.seq).collect())
        };
        assert_eq!(
            seqs("a"),
            (5..1_005).collect::<Vec<_>>(),
            "the newest thousand, in order"
        );
        assert_eq!(seqs("b"), [2_000, 2_001, 2_002]);
        assert!(seqs("c").is_empty(), "a success is not held");
        assert_eq!(kept.0.len(), 2);
    }
}
