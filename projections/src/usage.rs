//! Usage ingestion: every edge decision becomes a record, written in batches off the request path.

use crate::edge_cache::{EndpointEntry, KeyEntry};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::Database;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Records waiting beyond this are dropped (and counted) rather than slowing the edge down.
const QUEUE: usize = 100_000;
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// One decision. It holds the edge's own entries (a reference count each) rather than copies of
/// their ids: the edge makes tens of thousands of these a second.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub at: DateTime<Utc>,
    pub key: Option<Arc<KeyEntry>>,
    pub endpoint: Option<Arc<EndpointEntry>>,
    pub method: Cow<'static, str>,
    pub path: String,
    pub status: u16,
    pub code: &'static str,
    pub latency_us: i64,
    pub client_ip: Option<IpAddr>,
}

/// The edge's handle: `record` never waits.
#[derive(Clone)]
pub struct UsageRecorder {
    tx: mpsc::Sender<UsageRecord>,
}

impl UsageRecorder {
    pub fn record(&self, record: UsageRecord) {
        if !self.try_record(record) {
            metrics::counter!("keyledger_usage_records_dropped_total").increment(1);
        }
    }

    /// Queues a record unless the queue is full (or the writer gone); for callers that would
    /// rather wait than drop, such as the benchmark.
    pub fn try_record(&self, record: UsageRecord) -> bool {
        self.tx.try_send(record).is_ok()
    }
}

/// Starts the writer. Every 250 ms it takes what has queued up and writes it in one transaction;
/// once every recorder is dropped it writes what is left and ends: await the handle at shutdown so
/// nothing is lost.
///
/// It sleeps between batches rather than waiting on the queue: a writer that woke for every record
/// would be woken by the edge on every request and commit batches of a handful of records.
pub fn spawn(db: Database) -> (UsageRecorder, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<UsageRecord>(QUEUE);
    let handle = tokio::spawn(
        async move {
            let mut closed = false;
            while !closed {
                tokio::time::sleep(FLUSH_EVERY).await;
                let mut batch = Vec::new();
                loop {
                    match rx.try_recv() {
                        Ok(record) => batch.push(record),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                for attempt in 0..5u64 {
                    match write(&db, &batch).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, records = batch.len(), "usage batch not written; retrying");
                            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                        }
                    }
                }
            }
        }
        .instrument(tracing::info_span!("usage_writer")),
    );
    (UsageRecorder { tx }, handle)
}

/// SQLite's `INSERT … VALUES (?, …), (?, …)` for `rows` records. The parameters are anonymous
/// because SQLite looks numbered ones (`$12`) up by name, one linear scan per parameter, which made
/// a 2 000-row batch cost more CPU than the requests it recorded.
fn insert_sql(rows: usize) -> String {
    const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let mut sql = String::with_capacity(160 + rows * (ROW.len() + 2));
    sql.push_str(
        "INSERT INTO usage_log (at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, code, latency_us, client_ip) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(ROW);
    }
    sql
}

/// Rows per INSERT: statements of a few fixed sizes stay prepared in the connection's cache
/// instead of being parsed again for every batch.
const ROWS_PER_INSERT: usize = 256;

/// Splits `n` rows into fixed-size statements: whole 256-row ones, then powers of two.
fn chunk_sizes(mut n: usize) -> Vec<usize> {
    let mut sizes = vec![ROWS_PER_INSERT; n / ROWS_PER_INSERT];
    n %= ROWS_PER_INSERT;
    let mut size = ROWS_PER_INSERT / 2;
    while n > 0 {
        if n >= size {
            sizes.push(size);
            n -= size;
        }
        size /= 2;
    }
    sizes
}

async fn write(db: &Database, records: &[UsageRecord]) -> Result<(), ProjectionError> {
    if let Some(pool) = db.sqlite() {
        write_sqlite(pool, records).await?;
    } else if let Some(pool) = db.postgres() {
        write_postgres(pool, records).await?;
    }
    metrics::counter!("keyledger_usage_records_written_total").increment(records.len() as u64);
    Ok(())
}

/// Each key's last use and number of requests in a batch.
fn per_key(records: &[UsageRecord]) -> HashMap<&str, (i64, i64)> {
    let mut per_key: HashMap<&str, (i64, i64)> = HashMap::new();
    for r in records {
        if let Some(key) = r.key.as_deref() {
            let entry = per_key.entry(key.key_id.as_str()).or_insert((0, 0));
            entry.0 = entry.0.max(r.at.timestamp_millis());
            entry.1 += 1;
        }
    }
    per_key
}

/// Each key's last use and count, once per batch rather than per request; `$rows` gives them.
macro_rules! key_usage_upsert {
    ($rows:literal) => {
        concat!(
            "INSERT INTO key_usage (key_id, last_used_at_ms, requests) ",
            $rows,
            " ON CONFLICT (key_id) DO UPDATE SET last_used_at_ms = CASE WHEN excluded.last_used_at_ms > key_usage.last_used_at_ms \
             THEN excluded.last_used_at_ms ELSE key_usage.last_used_at_ms END, requests = key_usage.requests + excluded.requests"
        )
    };
}

async fn write_sqlite(pool: &sqlx::SqlitePool, records: &[UsageRecord]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut rest = records;
    for size in chunk_sizes(records.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let sql = insert_sql(size);
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(r.at.timestamp_millis())
                .bind(r.key.as_ref().map(|k| k.tenant.as_str()))
                .bind(r.key.as_ref().map(|k| k.key_id.as_str()))
                .bind(r.endpoint.as_ref().map(|e| e.endpoint_id.as_str()))
                .bind(r.endpoint.as_ref().map(|e| e.plugin.as_str()))
                .bind(r.method.as_ref())
                .bind(r.path.as_str())
                .bind(i64::from(r.status))
                .bind(r.code)
                .bind(r.latency_us)
                .bind(r.client_ip.map(|ip| ip.to_string()));
        }
        query.execute(&mut *tx).await?;
    }
    for (key, (last, count)) in per_key(records) {
        sqlx::query(key_usage_upsert!("VALUES ($1, $2, $3)"))
            .bind(key)
            .bind(last)
            .bind(count)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// PostgreSQL takes a batch as one array per column (`UNNEST`): one statement, eleven parameters.
async fn write_postgres(pool: &sqlx::PgPool, records: &[UsageRecord]) -> Result<(), sqlx::Error> {
    let text = |f: &dyn Fn(&UsageRecord) -> Option<String>| records.iter().map(f).collect::<Vec<_>>();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO usage_log (at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, code, latency_us, client_ip) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::bigint[], $9::text[], $10::bigint[], $11::text[])",
    )
    .bind(records.iter().map(|r| r.at.timestamp_millis()).collect::<Vec<_>>())
    .bind(text(&|r| r.key.as_ref().map(|k| k.tenant.clone())))
    .bind(text(&|r| r.key.as_ref().map(|k| k.key_id.clone())))
    .bind(text(&|r| r.endpoint.as_ref().map(|e| e.endpoint_id.clone())))
    .bind(text(&|r| r.endpoint.as_ref().map(|e| e.plugin.clone())))
    .bind(records.iter().map(|r| r.method.to_string()).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.path.clone()).collect::<Vec<_>>())
    .bind(records.iter().map(|r| i64::from(r.status)).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.code).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.latency_us).collect::<Vec<_>>())
    .bind(text(&|r| r.client_ip.map(|ip| ip.to_string())))
    .execute(&mut *tx)
    .await?;
    let (keys, (last, counts)): (Vec<&str>, (Vec<i64>, Vec<i64>)) = per_key(records).into_iter().unzip();
    sqlx::query(key_usage_upsert!(
        "SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[])"
    ))
    .bind(keys)
    .bind(last)
    .bind(counts)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_into_a_few_fixed_statement_sizes() {
        assert_eq!(chunk_sizes(0), Vec::<usize>::new());
        assert_eq!(chunk_sizes(1), vec![1]);
        assert_eq!(chunk_sizes(600), vec![256, 256, 64, 16, 8]);
        for n in 0..2_000 {
            let sizes = chunk_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= ROWS_PER_INSERT));
        }
    }

    #[test]
    fn sqlite_batches_use_anonymous_parameters() {
        let sql = insert_sql(2);
        assert!(sql.ends_with("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
        assert_eq!(sql.matches('?').count(), 22);
    }
}
