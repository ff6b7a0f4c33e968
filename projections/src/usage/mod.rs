//! Usage ingestion: every edge decision becomes a record, written in batches off the request path.

mod encode;
pub mod errors;
pub mod feed;
mod key_usage;
pub mod log;
pub mod retention;
pub mod rollups;
mod subjects;
pub use key_usage::{KeyUsage, KeyUsageReader};

use crate::edge_cache::{EndpointEntry, KeyEntry};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use encode::*;
use keyledger_commands::{Backend, Database};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use subjects::*;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Narrows a query of a usage table (rollups, kept errors: each has tenant, key_id,
/// endpoint_id, plugin, outcome and status columns, '' for an absent part) to what `f` wants.
pub(crate) fn filtered(sql: &mut crate::sql::Sql, f: &keyledger_domain::usage::UsageFilter) {
    for (column, value) in [
        ("tenant", &f.tenant),
        ("key_id", &f.key_id),
        ("endpoint_id", &f.endpoint_id),
        ("plugin", &f.plugin),
    ] {
        if let Some(value) = value {
            sql.push(&format!(" AND {column} = ")).bind_text(value.as_str());
        }
    }
    if let Some(outcome) = f.outcome {
        sql.push(" AND outcome = ").bind_text(outcome.recorded());
    }
    if let Some((low, high)) = f.status_class.map(keyledger_domain::usage::StatusClass::statuses) {
        sql.push(" AND status BETWEEN ")
            .bind_int(low.into())
            .push(" AND ")
            .bind_int(high.into());
    }
}

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

/// `keyledger_edge_decisions_total{code}`: every decision, counted by the writer as it takes
/// the records (within [`FLUSH_EVERY`]), or by the recorder when the queue is full. A counter
/// incremented by the edge itself is written by every request from every core, and passing its
/// cache line between them cost more than queueing the record.
pub const DECISIONS: &str = "keyledger_edge_decisions_total";

impl UsageRecorder {
    pub fn record(&self, record: UsageRecord) {
        let code = record.code;
        if !self.try_record(record) {
            metrics::counter!("keyledger_usage_records_dropped_total").increment(1);
            metrics::counter!(DECISIONS, "code" => code).increment(1);
        }
    }

    /// Queues a record unless the queue is full (or the writer gone); for callers that would
    /// rather wait than drop, such as the benchmark.
    pub fn try_record(&self, record: UsageRecord) -> bool {
        self.tx.try_send(record).is_ok()
    }
}

/// The writer's handle. At shutdown, once the edge has stopped, [`UsageWriter::finish`] has it
/// write what is queued and end: recorders may outlive the edge (the explorer's state holds the
/// edge), so the queue's closing cannot be what ends it.
pub struct UsageWriter {
    handle: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl UsageWriter {
    /// Writes what is queued and ends; `false` when that took longer than `within`.
    pub async fn finish(self, within: Duration) -> bool {
        let _ = self.stop.send(true);
        matches!(tokio::time::timeout(within, self.handle).await, Ok(Ok(())))
    }
}

/// Starts the writer. Every 100 ms it takes what has queued up and writes it in one transaction;
/// told to finish, or once every recorder is dropped, it writes what is left and ends.
///
/// It sleeps between batches rather than waiting on the queue: a writer that woke for every record
/// would be woken by the edge on every request and commit batches of a handful of records.
/// `written` is called after every write: the key usage reader reads its figures again, the
/// live feed reads the new batch.
pub fn spawn(db: Database, written: impl Fn() + Send + 'static) -> (UsageRecorder, UsageWriter) {
    let (tx, mut rx) = mpsc::channel::<UsageRecord>(QUEUE);
    let (stop, mut stopping) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(
        async move {
            let mut closed = false;
            // Kept from flush to flush: a fresh batch and buffer each time grew by doubling into
            // new pages, and the kernel's zeroing of them was a tenth of the writer's CPU. They
            // keep their largest size, which the queue bounds: 100 000 records, about 12 MB of
            // records and 8 MB of JSON.
            let mut batch = Vec::new();
            let mut buffer = Vec::new();
            let mut subjects = Subjects::default();
            let mut decisions = Decisions::default();
            while !closed {
                // Decided before the queue is drained: what was queued before the stop is written.
                // A handle dropped without `finish` stops the writer the same way.
                let told = tokio::select! {
                    _ = tokio::time::sleep(FLUSH_EVERY) => false,
                    _ = stopping.wait_for(|stop| *stop) => true,
                };
                closed = told || *stopping.borrow();
                loop {
                    match rx.try_recv() {
                        Ok(record) => {
                            decisions.count(record.code);
                            batch.push(record);
                        }
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                decisions.publish();
                if batch.is_empty() {
                    continue;
                }
                (batch, buffer) = flush(&db, &mut subjects, batch, buffer).await;
                written();
            }
        }
        .instrument(tracing::info_span!("usage_writer")),
    );
    (UsageRecorder { tx }, UsageWriter { handle, stop })
}

/// Decisions taken off the queue since the last flush, per code (a handful of codes).
#[derive(Default)]
struct Decisions(Vec<(&'static str, u64)>);

impl Decisions {
    fn count(&mut self, code: &'static str) {
        match self.0.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.0.push((code, 1)),
        }
    }

    fn publish(&mut self) {
        for (code, n) in self.0.drain(..) {
            metrics::counter!(DECISIONS, "code" => code).increment(n);
        }
    }
}

/// Attempts at each database step of a flush, 100 ms more apart each time (1.5 s in all).
const ATTEMPTS: u64 = 5;

async fn back_off(attempt: u64) {
    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
}

/// Writes one flush: numbers its new subjects, encodes it, appends it, each database step tried
/// [`ATTEMPTS`] times. What cannot be written is counted in `keyledger_usage_records_dropped_total`
/// and logged as an error, never lost silently. Hands back the batch (emptied) and the encoding
/// buffer, to be filled again.
async fn flush(
    db: &Database,
    subjects: &mut Subjects,
    mut batch: Vec<UsageRecord>,
    buffer: Vec<u8>,
) -> (Vec<UsageRecord>, Vec<u8>) {
    let records = batch.len();
    let mut plan = match subjects.plan(&batch) {
        Ok(plan) => plan,
        Err(e) => {
            dropped(records, &e);
            batch.clear();
            return (batch, buffer);
        }
    };
    let mut attempt = 0;
    while let Err(e) = subjects.number(db, &mut plan).await {
        tracing::warn!(error = %e, attempt, records, "usage subjects not numbered; retrying");
        attempt += 1;
        if attempt == ATTEMPTS {
            dropped(records, &e);
            batch.clear();
            return (batch, buffer);
        }
        back_off(attempt).await;
    }
    // Encoding a batch takes milliseconds: off the async workers, so that requests queued behind
    // the writer do not wait for it. The records are dropped there too.
    let encoded = tokio::task::spawn_blocking(move || {
        let mut batch = batch;
        let encoded = Encoded::of(&batch, plan, buffer);
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
    for attempt in 0..ATTEMPTS {
        match write(db, &encoded).await {
            Ok(()) => break,
            Err(e) if attempt + 1 == ATTEMPTS => dropped(records, &e),
            Err(e) => {
                tracing::warn!(error = %e, attempt, records, "usage batch not written; retrying");
                back_off(attempt).await;
            }
        }
    }
    (batch, encoded.into_buffer())
}

fn dropped(records: usize, error: &dyn std::fmt::Display) {
    tracing::error!(%error, records, "usage records dropped: they could not be written");
    metrics::counter!("keyledger_usage_records_dropped_total").increment(records as u64);
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

    fn endpoint(id: &str) -> Arc<EndpointEntry> {
        Arc::new(EndpointEntry {
            endpoint_id: id.to_owned(),
            path: "/files/{id}".to_owned(),
            methods: Default::default(),
            plugin: "files".to_owned(),
            required_scopes: Default::default(),
            upstream_url: "http://127.0.0.1:1".to_owned(),
            deprecated_at: None,
            sunset_at: None,
            active: true,
            disabled_tenants: Default::default(),
        })
    }

    #[test]
    fn a_record_is_stored_as_an_array_in_the_views_column_order() {
        let json = serde_json::to_string(&[stored(&record("/files/\"1\""), 1_700_000_000_000, Some(7))]).unwrap();
        assert_eq!(
            json,
            r#"[[123,7,"GET","/files/\"1\"",401,"invalid_key",42,"2001:db8::1"]]"#
        );
    }

    #[test]
    fn ipv4_addresses_are_written_as_their_usual_text() {
        for ip in ["0.0.0.0", "10.1.2.3", "203.0.113.255", "255.255.255.255"] {
            let mut r = record("/");
            r.client_ip = Some(ip.parse().unwrap());
            let json = serde_json::to_string(&stored(&r, 0, None)).unwrap();
            assert!(json.ends_with(&format!(",\"{ip}\"]")), "{json}");
        }
    }

    #[test]
    fn records_are_grouped_by_the_entries_they_hold_and_known_subjects_are_not_looked_up_again() {
        let (a, b) = (endpoint("ep-a"), endpoint("ep-b"));
        let with = |e: &Arc<EndpointEntry>| {
            let mut r = record("/files/1");
            r.endpoint = Some(e.clone());
            r
        };
        let records = [with(&a), with(&a), record("/x"), with(&b), with(&a)];
        let mut subjects = Subjects::default();
        let plan = subjects.plan(&records).unwrap();
        assert_eq!(plan.pair_of, [0, 0, 1, 2, 0]);
        let unnumbered: Vec<Option<&str>> = plan.pairs.iter().map(Subject::new_text).collect();
        assert_eq!(
            unnumbered,
            [
                Some("\u{1f}\u{1f}ep-a\u{1f}files\u{1f}"),
                None,
                Some("\u{1f}\u{1f}ep-b\u{1f}files\u{1f}")
            ]
        );
        assert_eq!(plan.per_key, "[]", "records without a key count for no key");

        subjects.ids.insert("\u{1f}\u{1f}ep-a\u{1f}files\u{1f}".to_owned(), 4);
        let plan = subjects.plan(&records).unwrap();
        assert_eq!(plan.pairs[0].id(), Some(4));
        assert!(plan.pairs[0].new_text().is_none());
        assert!(plan.pairs[2].new_text().is_some());
    }

    #[test]
    fn a_large_batch_is_split_into_rows_that_together_hold_every_record_once() {
        let mut records: Vec<UsageRecord> = (0..RECORDS_PER_ROW * 2 + 3)
            .map(|i| record(&format!("/r/{i}")))
            .collect();
        records[RECORDS_PER_ROW + 1].at = DateTime::from_timestamp_millis(1_700_000_000_050).unwrap();
        let plan = Subjects::default().plan(&records).unwrap();
        // A used buffer is cleared, not appended to.
        let encoded = Encoded::of(&records, plan, b"left over".to_vec()).unwrap();
        let rows: Vec<(&RowSpan, &str)> = encoded.rows().collect();
        assert_eq!(
            rows.iter().map(|r| r.0.records).collect::<Vec<_>>(),
            [RECORDS_PER_ROW as i64, RECORDS_PER_ROW as i64, 3]
        );
        assert_eq!(
            rows.iter().map(|r| r.0.base_ms).collect::<Vec<_>>(),
            [1_700_000_000_123, 1_700_000_000_050, 1_700_000_000_123],
            "each row's base is its earliest record"
        );
        let mut paths = Vec::new();
        let mut times = Vec::new();
        for (row, json) in rows {
            assert_eq!(row.written_at_ms, 1_700_000_000_123);
            let parsed: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
            assert_eq!(parsed.len() as i64, row.records);
            paths.extend(parsed.iter().map(|r| r[3].as_str().unwrap().to_owned()));
            times.extend(parsed.iter().map(|r| row.base_ms + r[0].as_i64().unwrap()));
        }
        let expected: Vec<String> = (0..records.len()).map(|i| format!("/r/{i}")).collect();
        assert_eq!(paths, expected);
        let expected: Vec<i64> = records.iter().map(|r| r.at.timestamp_millis()).collect();
        assert_eq!(times, expected);
    }
}
