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
            // records and 8 MB of JSON.
            let mut batch = Vec::new();
            let mut buffer = Vec::new();
            let mut subjects = Subjects::default();
            let mut decisions = Decisions::default();
            while !closed {
                tokio::time::sleep(FLUSH_EVERY).await;
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
            }
        }
        .instrument(tracing::info_span!("usage_writer")),
    );
    (UsageRecorder { tx }, handle)
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

/// Records per `usage_batches` row; a flush with more writes several rows.
const RECORDS_PER_ROW: usize = 10_000;

/// The subjects this writer has numbered, by [`subject_text`]. Beyond this many it forgets them
/// all and numbers them again from the table as they come.
const SUBJECTS_KEPT: usize = 1_000_000;

/// What a decision was about: tenant, key id, endpoint id and plugin ('' when absent), the
/// columns of `usage_subjects`.
fn subject_parts<'a>(key: Option<&'a KeyEntry>, endpoint: Option<&'a EndpointEntry>) -> [&'a str; 4] {
    [
        key.map_or("", |k| k.tenant.as_str()),
        key.map_or("", |k| k.key_id.as_str()),
        endpoint.map_or("", |e| e.endpoint_id.as_str()),
        endpoint.map_or("", |e| e.plugin.as_str()),
    ]
}

/// A subject as one text, the key of [`Subjects::ids`]: its parts, each ended by a unit
/// separator, which none of them can hold.
fn subject_text(out: &mut String, parts: [&str; 4]) {
    out.clear();
    for part in parts {
        out.push_str(part);
        out.push('\u{1f}');
    }
}

/// The `usage_subjects` numbers this writer knows.
#[derive(Default)]
struct Subjects {
    ids: HashMap<String, i64>,
    /// Reused for lookups, so that a known subject costs no allocation.
    text: String,
}

/// What the records of one (key entry, endpoint entry) pair are about.
enum Subject {
    /// Neither a key nor an endpoint: the records hold no subject.
    None,
    Numbered(i64),
    /// Not numbered yet: its text, until [`Subjects::number`] learns its number.
    New(String),
}

impl Subject {
    fn id(&self) -> Option<i64> {
        match self {
            Subject::Numbered(id) => Some(*id),
            Subject::None | Subject::New(_) => None,
        }
    }

    fn new_text(&self) -> Option<&str> {
        match self {
            Subject::New(text) => Some(text),
            Subject::None | Subject::Numbered(_) => None,
        }
    }
}

/// How a batch's records map to subjects, and each key's use in it.
struct Plan {
    /// Per record, its pair in `pairs`.
    pair_of: Vec<u32>,
    pairs: Vec<Subject>,
    /// Each key's last use and number of requests, as `[[key_id, last_ms, count], …]`.
    per_key: String,
}

impl Subjects {
    /// Groups the batch's records by the entries they hold (the same `Arc`s for as long as the
    /// batch holds them), and looks each group's subject up once.
    fn plan(&mut self, records: &[UsageRecord]) -> Result<Plan, serde_json::Error> {
        let address = |r: &UsageRecord| {
            (
                r.key.as_ref().map_or(0, |k| Arc::as_ptr(k) as usize),
                r.endpoint.as_ref().map_or(0, |e| Arc::as_ptr(e) as usize),
            )
        };
        let mut index: HashMap<(usize, usize), u32> = HashMap::new();
        // Each pair's first record, requests and last use.
        let mut seen: Vec<(&UsageRecord, i64, i64)> = Vec::new();
        let mut pair_of = Vec::with_capacity(records.len());
        let mut previous = None;
        for r in records {
            let at = address(r);
            let pair = match previous {
                // Records come in runs of one key: no hashing for those.
                Some((last, pair)) if last == at => pair,
                _ => *index.entry(at).or_insert_with(|| {
                    seen.push((r, 0, i64::MIN));
                    (seen.len() - 1) as u32
                }),
            };
            previous = Some((at, pair));
            let use_ = &mut seen[pair as usize];
            use_.1 += 1;
            use_.2 = use_.2.max(r.at.timestamp_millis());
            pair_of.push(pair);
        }
        if self.ids.len() > SUBJECTS_KEPT {
            self.ids.clear();
        }
        let mut per_key: HashMap<&str, (i64, i64)> = HashMap::new();
        let mut pairs = Vec::with_capacity(seen.len());
        for &(r, requests, last) in &seen {
            if let Some(key) = r.key.as_deref() {
                let entry = per_key.entry(key.key_id.as_str()).or_insert((0, 0));
                entry.0 = entry.0.max(last);
                entry.1 += requests;
            }
            if r.key.is_none() && r.endpoint.is_none() {
                pairs.push(Subject::None);
                continue;
            }
            subject_text(&mut self.text, subject_parts(r.key.as_deref(), r.endpoint.as_deref()));
            pairs.push(match self.ids.get(self.text.as_str()) {
                Some(&id) => Subject::Numbered(id),
                None => Subject::New(self.text.clone()),
            });
        }
        let per_key: Vec<(&str, i64, i64)> = per_key.into_iter().map(|(k, (last, n))| (k, last, n)).collect();
        Ok(Plan {
            pair_of,
            pairs,
            per_key: serde_json::to_string(&per_key)?,
        })
    }

    /// Numbers the plan's new subjects: inserts those the table lacks (another node may have
    /// inserted some already), then reads back every one's number.
    async fn number(&mut self, db: &Database, plan: &mut Plan) -> Result<(), ProjectionError> {
        let new: Vec<Vec<&str>> = plan
            .pairs
            .iter()
            .filter_map(Subject::new_text)
            .map(|text| text.split('\u{1f}').take(4).collect())
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let new = serde_json::to_string(&new).map_err(|e| ProjectionError::Usage(e.to_string()))?;
        let (insert, select) = match db.backend() {
            // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
            Backend::Sqlite => (
                "INSERT INTO usage_subjects (tenant, key_id, endpoint_id, plugin) \
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each($1) WHERE true \
                 ON CONFLICT DO NOTHING",
                "SELECT s.id, s.tenant, s.key_id, s.endpoint_id, s.plugin FROM json_each($1) j \
                 JOIN usage_subjects s ON s.tenant = j.value ->> 0 AND s.key_id = j.value ->> 1 \
                 AND s.endpoint_id = j.value ->> 2 AND s.plugin = j.value ->> 3",
            ),
            Backend::Postgres => (
                "INSERT INTO usage_subjects (tenant, key_id, endpoint_id, plugin) \
                 SELECT j ->> 0, j ->> 1, j ->> 2, j ->> 3 FROM jsonb_array_elements($1::jsonb) AS j \
                 ON CONFLICT DO NOTHING",
                "SELECT s.id, s.tenant, s.key_id, s.endpoint_id, s.plugin FROM jsonb_array_elements($1::jsonb) AS j \
                 JOIN usage_subjects s ON s.tenant = j ->> 0 AND s.key_id = j ->> 1 \
                 AND s.endpoint_id = j ->> 2 AND s.plugin = j ->> 3",
            ),
        };
        {
            let _turn = db.write_turn().await;
            sqlx::query(insert).bind(new.as_str()).execute(db.pool()).await?;
        }
        let numbered: Vec<(i64, String, String, String, String)> =
            sqlx::query_as(select).bind(new.as_str()).fetch_all(db.pool()).await?;
        for (id, tenant, key_id, endpoint_id, plugin) in numbered {
            subject_text(&mut self.text, [&tenant, &key_id, &endpoint_id, &plugin]);
            self.ids.insert(self.text.clone(), id);
        }
        for pair in &mut plan.pairs {
            if let Subject::New(text) = pair {
                let id = self
                    .ids
                    .get(text.as_str())
                    .copied()
                    .ok_or_else(|| ProjectionError::Usage(format!("usage subject {text:?} was not numbered")))?;
                *pair = Subject::Numbered(id);
            }
        }
        Ok(())
    }
}

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

/// One record as the log stores it: a JSON array in the order the `usage_log` view reads,
/// [at_ms - base_ms, subject, method, path, status, code, latency_us, client_ip].
type StoredRecord<'a> = (i64, Option<i64>, &'a str, &'a str, u16, &'a str, i64, Option<ShownIp>);

fn stored(r: &UsageRecord, base_ms: i64, subject: Option<i64>) -> StoredRecord<'_> {
    (
        r.at.timestamp_millis() - base_ms,
        subject,
        r.method.as_ref(),
        r.path.as_str(),
        r.status,
        r.code,
        r.latency_us,
        r.client_ip.map(ShownIp),
    )
}

/// One `usage_batches` row's records, serialized as they are read: no list of them is built.
struct Row<'a> {
    records: &'a [UsageRecord],
    pair_of: &'a [u32],
    pairs: &'a [Subject],
    base_ms: i64,
}

impl serde::Serialize for Row<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.records
                .iter()
                .zip(self.pair_of)
                .map(|(r, &pair)| stored(r, self.base_ms, self.pairs[pair as usize].id())),
        )
    }
}

/// A batch ready to append: its `usage_batches` rows and each key's use.
struct Encoded {
    /// All rows' JSON text, back to back; `rows` holds where each ends.
    text: String,
    rows: Vec<RowSpan>,
    per_key: String,
    records: usize,
}

/// One `usage_batches` row of an [`Encoded`] batch.
struct RowSpan {
    written_at_ms: i64,
    base_ms: i64,
    records: i64,
    /// Where its JSON ends in `text`.
    end: usize,
}

/// Bytes of JSON a record usually takes, to size the buffer once.
const RECORD_JSON: usize = 80;

impl Encoded {
    /// Encodes into `buffer`'s allocation, which [`Encoded::into_buffer`] gives back.
    fn of(records: &[UsageRecord], plan: Plan, mut buffer: Vec<u8>) -> Result<Self, serde_json::Error> {
        buffer.clear();
        buffer.reserve(records.len() * RECORD_JSON);
        let mut rows = Vec::with_capacity(records.len() / RECORDS_PER_ROW + 1);
        for (chunk, pair_of) in records
            .chunks(RECORDS_PER_ROW)
            .zip(plan.pair_of.chunks(RECORDS_PER_ROW))
        {
            let times = chunk.iter().map(|r| r.at.timestamp_millis());
            let (base_ms, written_at_ms) = times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
            let row = Row {
                records: chunk,
                pair_of,
                pairs: &plan.pairs,
                base_ms,
            };
            serde_json::to_writer(&mut buffer, &row)?;
            rows.push(RowSpan {
                written_at_ms,
                base_ms,
                records: chunk.len() as i64,
                end: buffer.len(),
            });
        }
        // serde_json writes UTF-8 only.
        let text = String::from_utf8(buffer).map_err(serde::ser::Error::custom)?;
        Ok(Encoded {
            text,
            rows,
            per_key: plan.per_key,
            records: records.len(),
        })
    }

    /// Each row and its JSON.
    fn rows(&self) -> impl Iterator<Item = (&RowSpan, &str)> {
        let starts = std::iter::once(0).chain(self.rows.iter().map(|r| r.end));
        self.rows
            .iter()
            .zip(starts)
            .map(|(row, start)| (row, &self.text[start..row.end]))
    }

    fn into_buffer(self) -> Vec<u8> {
        self.text.into_bytes()
    }
}

/// A batch is appended as JSON rows (one statement per 10 000 records, not one per record), and
/// each key's last use and count are updated in one statement, in the same transaction.
async fn write(db: &Database, batch: &Encoded) -> Result<(), ProjectionError> {
    let _turn = db.write_turn().await;
    let mut tx = db.pool().begin().await?;
    for (row, json) in batch.rows() {
        sqlx::query("INSERT INTO usage_batches (written_at_ms, base_ms, records, rows) VALUES ($1, $2, $3, $4)")
            .bind(row.written_at_ms)
            .bind(row.base_ms)
            .bind(row.records)
            .bind(json)
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

/// A key's last use and request count from the edge's usage records.
pub async fn key_usage(
    db: &keyledger_commands::Database,
    key_id: &str,
) -> Result<(Option<chrono::DateTime<chrono::Utc>>, i64), ProjectionError> {
    let row = sqlx::query("SELECT last_used_at_ms, requests FROM key_usage WHERE key_id = $1")
        .bind(key_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => (
            crate::sql::opt_time(sqlx::Row::try_get(&r, "last_used_at_ms")?),
            sqlx::Row::try_get(&r, "requests")?,
        ),
        None => (None, 0),
    })
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
