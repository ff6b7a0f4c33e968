//! The usage log's one reader: the records of the stored batches (`usage_batches`, with their
//! subjects from `usage_subjects`), in log order, as the `usage_log` view shows them to SQL. The
//! rollups fold them, the feed hands them out, streams replay them.

use crate::ProjectionError;
use chrono::DateTime;
use keyledger_commands::Database;
use keyledger_domain::usage::{Outcome, UsageEntry, UsageId};
use sqlx::{AnyConnection, Row};
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
/// status, code, latency_us, client_ip].
type Stored = (
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    String,
    i64,
    Option<String>,
);

/// A stored record whose texts are borrowed from the batch's JSON (none needs unescaping).
#[derive(serde::Deserialize)]
struct Borrowed<'a>(
    i64,
    Option<i64>,
    Option<&'a str>,
    Option<&'a str>,
    i64,
    &'a str,
    i64,
    Option<&'a str>,
);

impl Borrowed<'_> {
    fn owned(self) -> Stored {
        let Borrowed(offset, subject, method, path, status, code, latency_us, client_ip) = self;
        let own = |text: Option<&str>| text.map(str::to_owned);
        (
            offset,
            subject,
            own(method),
            own(path),
            status,
            code.to_owned(),
            latency_us,
            own(client_ip),
        )
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
/// (those left out included). The batches are read whole and decoded here: a row a record
/// through the `usage_log` view crossed SQLite's worker thread once each, and at the edge's
/// peak that handing over was a third of a core.
pub async fn entries(
    conn: &mut AnyConnection,
    after: UsageId,
    upto: i64,
) -> Result<(Vec<UsageEntry>, usize), ProjectionError> {
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
    let mut decoded = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut read = 0;
    for (batch, base_ms, rows) in &batches {
        // Texts borrowed from the batch in one pass: a batch whose texts need unescaping (or
        // that does not read) is taken a record at a time instead.
        let records = match serde_json::from_str::<Vec<Borrowed<'_>>>(rows) {
            Ok(records) => records.into_iter().map(Borrowed::owned).map(Ok).collect(),
            Err(_) => match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(rows) {
                Ok(raw) => raw
                    .into_iter()
                    .map(|r| serde_json::from_str::<Stored>(r.get()))
                    .collect(),
                Err(e) => {
                    tracing::warn!(batch, error = %e, "a usage batch that does not read is left out");
                    continue;
                }
            },
        };
        let records: Vec<Result<Stored, serde_json::Error>> = records;
        read += records.len();
        decoded.reserve(records.len());
        for (seq, record) in records.into_iter().enumerate() {
            let Some(id) = UsageId::new(*batch, seq as i64) else {
                tracing::warn!(batch, seq, "a usage record past its batch's size is left out");
                continue;
            };
            if id <= after {
                continue;
            }
            match record {
                Ok(record) => {
                    ids.extend(record.1);
                    decoded.push((id, *base_ms, record));
                }
                Err(e) => tracing::warn!(batch, seq, error = %e, "a usage record that does not read is left out"),
            }
        }
        tokio::task::yield_now().await;
    }
    let subjects = subjects(conn, &ids).await?;
    let mut entries = Vec::with_capacity(decoded.len());
    for (i, (id, base_ms, (offset, subject, method, path, status, code, latency_us, client_ip))) in
        decoded.into_iter().enumerate()
    {
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
        let at_ms = base_ms + offset;
        let (Ok(outcome), Some(at)) = (Outcome::from_recorded(&code), DateTime::from_timestamp_millis(at_ms)) else {
            tracing::warn!(
                code,
                at_ms,
                "a usage record with an unknown outcome or time is left out"
            );
            continue;
        };
        let [tenant, key_id, endpoint_id, plugin] = subject.and_then(|s| subjects.get(&s).cloned()).unwrap_or_default();
        entries.push(UsageEntry {
            id,
            at,
            tenant,
            key_id,
            endpoint_id,
            plugin,
            method: method.unwrap_or_default(),
            path: path.unwrap_or_default(),
            status: u16::try_from(status).unwrap_or(0),
            outcome,
            latency_us,
            client_ip,
        });
    }
    Ok((entries, read))
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
