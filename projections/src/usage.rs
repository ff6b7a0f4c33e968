//! Usage ingestion: every edge decision becomes a record, written in batches off the request path.

use crate::edge_cache::{EndpointEntry, KeyEntry};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_commands::{Backend, Database};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Records waiting beyond this are dropped (and counted) rather than slowing the edge down.
const QUEUE: usize = 100_000;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

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

/// Starts the writer. Every 100 ms it takes what has queued up and writes it in one transaction;
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
            // Kept from flush to flush: a fresh batch and buffer each time grew by doubling into
            // new pages, and the kernel's zeroing of them was a tenth of the writer's CPU. They
            // keep their largest size, which the queue bounds: 100 000 records, about 12 MB of
            // records and 19 MB of JSON.
            let mut batch = Vec::new();
            let mut buffer = Vec::new();
            while !closed {
                tokio::time::sleep(FLUSH_EVERY).await;
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
                (batch, buffer) = flush(&db, batch, buffer).await;
            }
        }
        .instrument(tracing::info_span!("usage_writer")),
    );
    (UsageRecorder { tx }, handle)
}

/// Writes one flush, retrying a failed write five times over 1.5 s. What cannot be written is
/// counted in `keyledger_usage_records_dropped_total` and logged as an error, never lost silently.
/// Hands back the batch (emptied) and the encoding buffer, to be filled again.
async fn flush(db: &Database, batch: Vec<UsageRecord>, buffer: Vec<u8>) -> (Vec<UsageRecord>, Vec<u8>) {
    let records = batch.len();
    // Encoding a batch takes milliseconds: off the async workers, so that requests queued behind
    // the writer do not wait for it. The records are dropped there too.
    let encoded = tokio::task::spawn_blocking(move || {
        let mut batch = batch;
        let encoded = Encoded::of(&batch, buffer);
        batch.clear();
        (batch, encoded)
    })
    .await;
    let (batch, encoded) = match encoded {
        Ok((batch, Ok(encoded))) => (batch, encoded),
        Ok((batch, Err(e))) => {
            dropped(records, &e);
            return (batch, Vec::new());
        }
        Err(e) => {
            dropped(records, &e);
            return (Vec::new(), Vec::new());
        }
    };
    let mut last_error = None;
    for attempt in 0..5u64 {
        match write(db, &encoded).await {
            Ok(()) => return (batch, encoded.into_buffer()),
            Err(e) => {
                tracing::warn!(error = %e, attempt, records, "usage batch not written; retrying");
                last_error = Some(e);
                tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
            }
        }
    }
    if let Some(e) = last_error {
        dropped(records, &e);
    }
    (batch, encoded.into_buffer())
}

fn dropped(records: usize, error: &dyn std::fmt::Display) {
    tracing::error!(%error, records, "usage records dropped: they could not be written");
    metrics::counter!("keyledger_usage_records_dropped_total").increment(records as u64);
}

/// Records per `usage_batches` row; a flush with more writes several rows.
const RECORDS_PER_ROW: usize = 10_000;

/// One record as the log stores it: a JSON array in the column order of the `usage_log` view.
type StoredRecord<'a> = (
    i64,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a str,
    u16,
    &'a str,
    i64,
    Option<ShownIp>,
);

/// A client address written straight into the JSON text, without a `String` of its own.
#[derive(Debug, Clone, Copy)]
struct ShownIp(IpAddr);

impl serde::Serialize for ShownIp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            // Most clients: four numbers with itoa, instead of `Display`'s formatter per octet.
            IpAddr::V4(v4) => {
                let mut text = [0u8; 15];
                let mut len = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text[len] = b'.';
                        len += 1;
                    }
                    let mut digits = itoa::Buffer::new();
                    let digits = digits.format(octet).as_bytes();
                    text[len..len + digits.len()].copy_from_slice(digits);
                    len += digits.len();
                }
                serializer.serialize_str(std::str::from_utf8(&text[..len]).map_err(serde::ser::Error::custom)?)
            }
            IpAddr::V6(v6) => serializer.collect_str(&v6),
        }
    }
}

fn stored(r: &UsageRecord) -> StoredRecord<'_> {
    (
        r.at.timestamp_millis(),
        r.key.as_ref().map(|k| k.tenant.as_str()),
        r.key.as_ref().map(|k| k.key_id.as_str()),
        r.endpoint.as_ref().map(|e| e.endpoint_id.as_str()),
        r.endpoint.as_ref().map(|e| e.plugin.as_str()),
        r.method.as_ref(),
        r.path.as_str(),
        r.status,
        r.code,
        r.latency_us,
        r.client_ip.map(ShownIp),
    )
}

/// Each key's last use and number of requests in a batch, as `[[key_id, last_ms, count], …]`.
fn per_key_json(records: &[UsageRecord]) -> Result<String, serde_json::Error> {
    let mut per_key: HashMap<&str, (i64, i64)> = HashMap::new();
    for r in records {
        if let Some(key) = r.key.as_deref() {
            let entry = per_key.entry(key.key_id.as_str()).or_insert((0, 0));
            entry.0 = entry.0.max(r.at.timestamp_millis());
            entry.1 += 1;
        }
    }
    let rows: Vec<(&str, i64, i64)> = per_key.into_iter().map(|(k, (last, n))| (k, last, n)).collect();
    serde_json::to_string(&rows)
}

/// A batch ready to append: its `usage_batches` rows and each key's use.
struct Encoded {
    /// All rows' JSON text, back to back; `rows` holds where each ends.
    text: String,
    /// (written_at_ms, records, end of its JSON in `text`) per `usage_batches` row.
    rows: Vec<(i64, i64, usize)>,
    per_key: String,
    records: usize,
}

/// Bytes of JSON a record usually takes, to size the buffer once.
const RECORD_JSON: usize = 192;

impl Encoded {
    /// Encodes into `buffer`'s allocation, which [`Encoded::into_buffer`] gives back.
    fn of(records: &[UsageRecord], mut buffer: Vec<u8>) -> Result<Self, serde_json::Error> {
        buffer.clear();
        buffer.reserve(records.len() * RECORD_JSON);
        let mut rows = Vec::with_capacity(records.len() / RECORDS_PER_ROW + 1);
        for chunk in records.chunks(RECORDS_PER_ROW) {
            let written_at = chunk.iter().map(|r| r.at.timestamp_millis()).max().unwrap_or(0);
            let stored: Vec<StoredRecord<'_>> = chunk.iter().map(stored).collect();
            serde_json::to_writer(&mut buffer, &stored)?;
            rows.push((written_at, chunk.len() as i64, buffer.len()));
        }
        // serde_json writes UTF-8 only.
        let text = String::from_utf8(buffer).map_err(serde::ser::Error::custom)?;
        Ok(Encoded {
            text,
            rows,
            per_key: per_key_json(records)?,
            records: records.len(),
        })
    }

    /// Each row's (written_at_ms, records, JSON).
    fn rows(&self) -> impl Iterator<Item = (i64, i64, &str)> {
        let starts = std::iter::once(0).chain(self.rows.iter().map(|r| r.2));
        self.rows
            .iter()
            .zip(starts)
            .map(|(&(at, n, end), start)| (at, n, &self.text[start..end]))
    }

    fn into_buffer(self) -> Vec<u8> {
        self.text.into_bytes()
    }
}

/// A batch is appended as JSON rows (one statement per 10 000 records, not one per record), and
/// each key's last use and count are updated in one statement, in the same transaction.
async fn write(db: &Database, batch: &Encoded) -> Result<(), ProjectionError> {
    let mut tx = db.pool().begin().await?;
    for (written_at, records, rows) in batch.rows() {
        sqlx::query("INSERT INTO usage_batches (written_at_ms, records, rows) VALUES ($1, $2, $3)")
            .bind(written_at)
            .bind(records)
            .bind(rows)
            .execute(&mut *tx)
            .await?;
    }
    let key_rows = match db.backend() {
        // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
        Backend::Sqlite => "SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1) WHERE true",
        Backend::Postgres => {
            "SELECT e ->> 0, (e ->> 1)::bigint, (e ->> 2)::bigint FROM jsonb_array_elements($1::jsonb) AS e"
        }
    };
    sqlx::query(&format!(
        "INSERT INTO key_usage (key_id, last_used_at_ms, requests) {key_rows} \
         ON CONFLICT (key_id) DO UPDATE SET last_used_at_ms = CASE WHEN excluded.last_used_at_ms > key_usage.last_used_at_ms \
         THEN excluded.last_used_at_ms ELSE key_usage.last_used_at_ms END, requests = key_usage.requests + excluded.requests"
    ))
    .bind(batch.per_key.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("keyledger_usage_records_written_total").increment(batch.records as u64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> UsageRecord {
        UsageRecord {
            at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            key: None,
            endpoint: None,
            method: Cow::Borrowed("GET"),
            path: path.to_owned(),
            status: 401,
            code: "invalid_key",
            latency_us: 42,
            client_ip: Some("2001:db8::1".parse().unwrap()),
        }
    }

    #[test]
    fn a_record_is_stored_as_an_array_in_the_views_column_order() {
        let json = serde_json::to_string(&[stored(&record("/files/\"1\""))]).unwrap();
        assert_eq!(
            json,
            r#"[[1700000000123,null,null,null,null,"GET","/files/\"1\"",401,"invalid_key",42,"2001:db8::1"]]"#
        );
    }

    #[test]
    fn ipv4_addresses_are_written_as_their_usual_text() {
        for ip in ["0.0.0.0", "10.1.2.3", "203.0.113.255", "255.255.255.255"] {
            let mut r = record("/");
            r.client_ip = Some(ip.parse().unwrap());
            let json = serde_json::to_string(&stored(&r)).unwrap();
            assert!(json.ends_with(&format!(",\"{ip}\"]")), "{json}");
        }
    }

    #[test]
    fn a_large_batch_is_split_into_rows_that_together_hold_every_record_once() {
        let records: Vec<UsageRecord> = (0..RECORDS_PER_ROW * 2 + 3)
            .map(|i| record(&format!("/r/{i}")))
            .collect();
        // A used buffer is cleared, not appended to.
        let encoded = Encoded::of(&records, b"left over".to_vec()).unwrap();
        let rows: Vec<(i64, i64, &str)> = encoded.rows().collect();
        assert_eq!(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            [RECORDS_PER_ROW as i64, RECORDS_PER_ROW as i64, 3]
        );
        let mut paths = Vec::new();
        for (written_at, n, json) in rows {
            assert_eq!(written_at, 1_700_000_000_123);
            let parsed: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
            assert_eq!(parsed.len() as i64, n);
            paths.extend(parsed.iter().map(|r| r[6].as_str().unwrap().to_owned()));
        }
        let expected: Vec<String> = (0..records.len()).map(|i| format!("/r/{i}")).collect();
        assert_eq!(paths, expected);
    }

    #[test]
    fn records_without_a_key_count_for_no_key() {
        assert_eq!(per_key_json(&[record("/a"), record("/b")]).unwrap(), "[]");
    }
}
