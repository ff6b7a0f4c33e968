//! Usage ingestion: every edge decision becomes a record, written in batches off the request path.

use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Records waiting beyond this are dropped (and counted) rather than slowing the edge down.
const QUEUE: usize = 100_000;
const BATCH: usize = 2_000;
const FLUSH_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub at: DateTime<Utc>,
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub plugin: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub code: String,
    pub latency_us: i64,
    pub client_ip: Option<String>,
}

/// The edge's handle: `record` never waits.
#[derive(Clone)]
pub struct UsageRecorder {
    tx: mpsc::Sender<UsageRecord>,
}

impl UsageRecorder {
    pub fn record(&self, record: UsageRecord) {
        if self.tx.try_send(record).is_err() {
            metrics::counter!("keyledger_usage_records_dropped_total").increment(1);
        }
    }
}

/// Starts the writer. It flushes every 250 ms or 2 000 records, and once every recorder is dropped
/// it writes what is left and ends: await the handle at shutdown so nothing is lost.
pub fn spawn(db: Database) -> (UsageRecorder, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<UsageRecord>(QUEUE);
    let handle = tokio::spawn(
        async move {
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                let closed = match tokio::time::timeout(FLUSH_EVERY, rx.recv_many(&mut batch, BATCH)).await {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(_) => false,
                };
                if !batch.is_empty() {
                    let records = std::mem::take(&mut batch);
                    for attempt in 0..5u64 {
                        match write(&db, &records).await {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, attempt, records = records.len(), "usage batch not written; retrying");
                                tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                            }
                        }
                    }
                }
                if closed {
                    return;
                }
            }
        }
        .instrument(tracing::info_span!("usage_writer")),
    );
    (UsageRecorder { tx }, handle)
}

async fn write(db: &Database, records: &[UsageRecord]) -> Result<(), ProjectionError> {
    let mut tx = db.pool().begin().await?;
    let mut sql = String::from(
        "INSERT INTO usage_log (at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, code, latency_us, client_ip) VALUES ",
    );
    for i in 0..records.len() {
        let base = i * 11;
        if i > 0 {
            sql.push_str(", ");
        }
        let params: Vec<String> = (1..=11).map(|n| format!("${}", base + n)).collect();
        sql.push('(');
        sql.push_str(&params.join(", "));
        sql.push(')');
    }
    let mut query = sqlx::query(&sql);
    for r in records {
        query = query
            .bind(r.at.timestamp_millis())
            .bind(r.tenant.clone())
            .bind(r.key_id.clone())
            .bind(r.endpoint_id.clone())
            .bind(r.plugin.clone())
            .bind(r.method.clone())
            .bind(r.path.clone())
            .bind(i64::from(r.status))
            .bind(r.code.clone())
            .bind(r.latency_us)
            .bind(r.client_ip.clone());
    }
    query.execute(&mut *tx).await?;
    // Each key's last use and count, once per batch rather than per request.
    let mut per_key: HashMap<&str, (i64, i64)> = HashMap::new();
    for r in records {
        if let Some(key) = r.key_id.as_deref() {
            let entry = per_key.entry(key).or_insert((0, 0));
            entry.0 = entry.0.max(r.at.timestamp_millis());
            entry.1 += 1;
        }
    }
    for (key, (last, count)) in per_key {
        sqlx::query(
            "INSERT INTO key_usage (key_id, last_used_at_ms, requests) VALUES ($1, $2, $3) \
             ON CONFLICT (key_id) DO UPDATE SET last_used_at_ms = CASE WHEN excluded.last_used_at_ms > key_usage.last_used_at_ms \
             THEN excluded.last_used_at_ms ELSE key_usage.last_used_at_ms END, requests = key_usage.requests + excluded.requests",
        )
        .bind(key)
        .bind(last)
        .bind(count)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    metrics::counter!("keyledger_usage_records_written_total").increment(records.len() as u64);
    Ok(())
}
