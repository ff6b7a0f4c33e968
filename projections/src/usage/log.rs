//! The usage log's one reader: the records of the stored batches (`usage_batches`, with their
//! subjects from `usage_subjects`), in log order, as the `usage_log` view shows them to SQL. The
//! rollups fold them, the feed hands them out, streams replay them.

use super::errors;
use crate::ProjectionError;
use chrono::DateTime;
use keyledger_commands::Database;
use keyledger_domain::usage::{Outcome, UsageEntry, UsageId};
use sqlx::{AnyConnection, Row};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The newest batch's id (0 while there is none).
pub async fn last_batch(db: &Database) -> Result<i64, ProjectionError> {
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM usage_batches")
        .fetch_one(db.pool())
        .await?;
    Ok(last.unwrap_or(0))
}

/// Where a read of at most `batches` batches after `after` and up to `upto` (inclusive) ends,
/// stopping at the batch that reaches `records` records (the first batch is always taken), and
/// whether batches are left after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub end: i64,
    pub more: bool,
}

/// The [`Page`] after `after`, `None` when there are no batches. One query: the batch past the
/// page's end is looked at with it.
pub async fn page(
    conn: &mut AnyConnection,
    after: i64,
    upto: i64,
    batches: i64,
    records: i64,
) -> Result<Option<Page>, ProjectionError> {
    let row = sqlx::query(
        "SELECT MAX(CASE WHEN n <= $3 AND before < $4 THEN id END) AS page_end, MAX(id) AS seen FROM \
         (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n, \
          SUM(records) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) - records AS before \
          FROM usage_batches WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3 + 1) page",
    )
    .bind(after)
    .bind(upto)
    .bind(batches)
    .bind(records)
    .fetch_one(&mut *conn)
    .await?;
    let (end, seen): (Option<i64>, Option<i64>) = (row.try_get("page_end")?, row.try_get("seen")?);
    Ok(end.map(|end| Page {
        end,
        more: seen.is_some_and(|seen| seen > end),
    }))
}

/// The end of that [`Page`] alone, however many records its batches hold.
pub async fn page_end(
    conn: &mut AnyConnection,
    after: i64,
    upto: i64,
    batches: i64,
) -> Result<Option<i64>, ProjectionError> {
    Ok(page(conn, after, upto, batches, i64::MAX).await?.map(|p| p.end))
}

/// Records decoded or folded between two turns given back to the runtime (about a quarter of
/// a millisecond of work). A node pinned to one core runs one Tokio worker, and a step's loops
/// over its records would otherwise hold the edge's answers behind them.
pub(crate) const YIELD_EVERY: usize = 256;

/// One record as a batch stores it (see `encode`): [at_ms - base_ms, subject, method, path,
/// status, code, latency_us, client_ip]. Its texts are borrowed from the batch's JSON unless
/// they need unescaping.
#[derive(serde::Deserialize)]
struct Stored<'a>(
    i64,
    Option<i64>,
    #[serde(borrow)] Option<Text<'a>>,
    #[serde(borrow)] Option<Text<'a>>,
    i64,
    #[serde(borrow)] Text<'a>,
    i64,
    #[serde(borrow)] Option<Text<'a>>,
);

/// A text of a stored record. serde borrows a `Cow` only when it is a field's own type, not
/// inside an `Option`.
#[derive(serde::Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Which of a record's own texts (method, path, client address) a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Texts {
    /// Every record's: the feed and streams hand them out.
    All,
    /// Only those of the errors the rollups keep ([`errors::kept`]): the rollups' cells have no
    /// method, path or address, and copying them made four allocations of every success.
    OfErrors,
}

impl Texts {
    fn wanted(self, status: u16) -> bool {
        self == Texts::All || errors::kept(status)
    }
}

/// The tenant, key, endpoint and plugin of each subject in `ids` ('' read as none).
async fn subjects(
    conn: &mut AnyConnection,
    ids: &std::collections::BTreeSet<i64>,
) -> Result<HashMap<i64, [Option<Arc<str>>; 4]>, ProjectionError> {
    let ids: Vec<i64> = ids.iter().copied().collect();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let list = crate::rows::list(conn, chunk.len());
        let sql = format!("SELECT id, tenant, key_id, endpoint_id, plugin FROM usage_subjects WHERE id IN ({list})");
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let part = |column: &str| -> Result<Option<Arc<str>>, ProjectionError> {
                let value: String = row.try_get(column)?;
                Ok((!value.is_empty()).then(|| value.into()))
            };
            found.insert(
                row.try_get::<i64, _>("id")?,
                [part("tenant")?, part("key_id")?, part("endpoint_id")?, part("plugin")?],
            );
        }
    }
    Ok(found)
}

/// The records after `after` in the batches up to `upto`, in log order, and how many were read
/// (those left out included); their method, path and client address as `texts` asks.
pub async fn entries(
    conn: &mut AnyConnection,
    after: UsageId,
    upto: i64,
    texts: Texts,
) -> Result<(Vec<UsageEntry>, usize), ProjectionError> {
    let mut entries = Vec::new();
    let read = each(conn, after, upto, texts, |entry| entries.push(entry)).await?;
    Ok((entries, read))
}

/// Hands each record of [`entries`] to `visit` in log order, without collecting them, and
/// returns how many were read. The batches are read whole and decoded here: a row a record
/// through the `usage_log` view crossed SQLite's worker thread once each, and at the edge's peak
/// that handing over was a third of a core. Each batch is decoded into one list borrowing its
/// text, and each record made into an entry only as it is handed over: copying a step's records
/// into a list of all of them, then into entries, cost more than their decoding.
pub async fn each(
    conn: &mut AnyConnection,
    after: UsageId,
    upto: i64,
    texts: Texts,
    mut visit: impl FnMut(UsageEntry),
) -> Result<usize, ProjectionError> {
    // From `after`'s own batch, unless `after` ends it.
    let first = if after.is_last_of_batch() {
        after.batch + 1
    } else {
        after.batch
    };
    let batches: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT id, base_ms, rows FROM usage_batches WHERE id >= $1 AND id <= $2 ORDER BY id")
            .bind(first)
            .bind(upto)
            .fetch_all(&mut *conn)
            .await?;
    let mut decoded: Vec<(i64, i64, Vec<Option<Stored<'_>>>)> = Vec::with_capacity(batches.len());
    let mut ids = std::collections::BTreeSet::new();
    let mut read = 0;
    for (batch, base_ms, rows) in &batches {
        let Some(records) = decode(*batch, rows) else { continue };
        read += records.len();
        // A batch's records come in runs of the same subject.
        let mut last_subject = None;
        for record in records.iter().flatten() {
            if record.1 != last_subject {
                last_subject = record.1;
                ids.extend(record.1);
            }
        }
        decoded.push((*batch, *base_ms, records));
        tokio::task::yield_now().await;
    }
    let subjects = subjects(conn, &ids).await?;
    let mut handed = 0usize;
    for (batch, base_ms, records) in decoded {
        for (seq, record) in records.into_iter().enumerate() {
            let Some(record) = record else { continue };
            let Some(id) = UsageId::new(batch, seq as i64) else {
                tracing::warn!(batch, seq, "a usage record past its batch's size is left out");
                continue;
            };
            if id <= after {
                continue;
            }
            let Some(entry) = entry(id, base_ms, record, &subjects, texts) else {
                continue;
            };
            visit(entry);
            handed += 1;
            if handed.is_multiple_of(YIELD_EVERY) {
                tokio::task::yield_now().await;
            }
        }
    }
    Ok(read)
}

/// A batch's records, `None` for each that does not read; `None` when the batch does not.
fn decode(batch: i64, rows: &str) -> Option<Vec<Option<Stored<'_>>>> {
    // The whole batch in one pass; a batch that does not read so is taken a record at a time, so
    // that one damaged record leaves out only itself.
    if let Ok(records) = serde_json::from_str::<Vec<Stored<'_>>>(rows) {
        return Some(records.into_iter().map(Some).collect());
    }
    match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(rows) {
        Ok(raw) => Some(
            raw.into_iter()
                .enumerate()
                .map(|(seq, r)| {
                    serde_json::from_str(r.get())
                        .inspect_err(
                            |e| tracing::warn!(batch, seq, error = %e, "a usage record that does not read is left out"),
                        )
                        .ok()
                })
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(batch, error = %e, "a usage batch that does not read is left out");
            None
        }
    }
}

/// The entry of a stored record, with its subject's texts; `None` (and a warning) when its
/// outcome or time does not read.
fn entry(
    id: UsageId,
    base_ms: i64,
    record: Stored<'_>,
    subjects: &HashMap<i64, [Option<Arc<str>>; 4]>,
    texts: Texts,
) -> Option<UsageEntry> {
    let Stored(offset, subject, method, path, status, code, latency_us, client_ip) = record;
    let at_ms = base_ms + offset;
    let (Ok(outcome), Some(at)) = (Outcome::from_recorded(&code.0), DateTime::from_timestamp_millis(at_ms)) else {
        tracing::warn!(
            code = %code.0,
            at_ms,
            "a usage record with an unknown outcome or time is left out"
        );
        return None;
    };
    let status = u16::try_from(status).unwrap_or(0);
    let wanted = texts.wanted(status);
    let own = |text: Option<Text<'_>>| text.filter(|_| wanted).map(|t| t.0.into_owned());
    let [tenant, key_id, endpoint_id, plugin] = subject.and_then(|s| subjects.get(&s).cloned()).unwrap_or_default();
    Some(UsageEntry {
        id,
        at,
        tenant,
        key_id,
        endpoint_id,
        plugin,
        method: own(method).unwrap_or_default(),
        path: own(path).unwrap_or_default(),
        status,
        outcome,
        latency_us,
        client_ip: own(client_ip),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_page_ends_at_its_batch_count_or_at_the_batch_that_reaches_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::connect(&format!("sqlite://{}", dir.path().join("log.db").display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let first = last_batch(&db).await.unwrap();
        for records in [10i64, 50_000, 50_000, 30, 20] {
            sqlx::query("INSERT INTO usage_batches (written_at_ms, base_ms, records, rows) VALUES (0, 0, $1, '[]')")
                .bind(records)
                .execute(db.pool())
                .await
                .unwrap();
        }
        let mut conn = db.pool().acquire().await.unwrap();
        let mut end = async |after: i64, batches: i64, records: i64| {
            page(&mut conn, after, i64::MAX, batches, records)
                .await
                .unwrap()
                .map(|p| p.end)
        };
        assert_eq!(
            end(first, 64, 100_000).await,
            Some(first + 3),
            "up to the batch that reaches 100 000"
        );
        assert_eq!(end(first, 2, 100_000).await, Some(first + 2), "at most two batches");
        assert_eq!(
            end(first + 1, 64, 1).await,
            Some(first + 2),
            "one batch over the limit is still read"
        );
        assert_eq!(end(first + 3, 64, 100_000).await, Some(first + 5), "the rest");
        assert_eq!(end(first + 5, 64, 100_000).await, None, "nothing after the last");
        let more = |end, more| Some(Page { end, more });
        assert_eq!(
            page(&mut conn, first, i64::MAX, 64, 100_000).await.unwrap(),
            more(first + 3, true)
        );
        assert_eq!(
            page(&mut conn, first + 3, i64::MAX, 2, 100_000).await.unwrap(),
            more(first + 5, false)
        );
        assert_eq!(
            page(&mut conn, first + 3, i64::MAX, 1, 100_000).await.unwrap(),
            more(first + 4, true)
        );
    }
}
