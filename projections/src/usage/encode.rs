//! A batch as the usage log stores it: JSON rows of compact records, and the transaction that
//! appends them.

use super::*;

/// A client address written straight into the JSON text, without a `String` of its own.
#[derive(Debug, Clone, Copy)]
pub(super) struct ShownIp(IpAddr);

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

pub(super) fn stored<'a>(r: &Spooled<'a>, base_ms: i64, subject: Option<i64>) -> StoredRecord<'a> {
    (
        r.at_ms - base_ms,
        subject,
        r.method,
        r.path,
        r.status,
        r.code,
        r.latency_us,
        r.client_ip.map(ShownIp),
    )
}

/// One `usage_batches` row's records, serialized as they are read: no list of them is built.
pub(super) struct Row<'a> {
    pub(super) records: &'a [Spooled<'a>],
    pub(super) pair_of: &'a [u32],
    pub(super) pairs: &'a [Subject],
    pub(super) base_ms: i64,
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
pub(super) struct Encoded {
    /// All rows' JSON text, back to back; `rows` holds where each ends.
    pub(super) text: String,
    pub(super) rows: Vec<RowSpan>,
    pub(super) per_key: String,
    pub(super) records: usize,
}

/// One `usage_batches` row of an [`Encoded`] batch.
pub(super) struct RowSpan {
    pub(super) written_at_ms: i64,
    pub(super) base_ms: i64,
    pub(super) records: i64,
    /// Where its JSON ends in `text`.
    pub(super) end: usize,
}

/// Bytes of JSON a record usually takes, to size the buffer once.
pub(super) const RECORD_JSON: usize = 80;

impl Encoded {
    /// Encodes into `buffer`'s allocation, which [`Encoded::into_buffer`] gives back.
    pub(super) fn of(records: &[Spooled<'_>], plan: Plan, mut buffer: Vec<u8>) -> Result<Self, serde_json::Error> {
        buffer.clear();
        buffer.reserve(records.len() * RECORD_JSON);
        let mut rows = Vec::with_capacity(records.len() / RECORDS_PER_ROW + 1);
        for (chunk, pair_of) in records
            .chunks(RECORDS_PER_ROW)
            .zip(plan.pair_of.chunks(RECORDS_PER_ROW))
        {
            let times = chunk.iter().map(|r| r.at_ms);
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
    pub(super) fn rows(&self) -> impl Iterator<Item = (&RowSpan, &str)> {
        let starts = std::iter::once(0).chain(self.rows.iter().map(|r| r.end));
        self.rows
            .iter()
            .zip(starts)
            .map(|(row, start)| (row, &self.text[start..row.end]))
    }

    pub(super) fn into_buffer(self) -> Vec<u8> {
        self.text.into_bytes()
    }
}

/// A batch is appended as JSON rows (one statement per 10 000 records, not one per record), and
/// each key's last use and count are updated in one statement, in the same transaction.
pub(super) async fn write(
    db: &Database,
    batch: &Encoded,
    spool: &str,
    reached: Position,
) -> Result<(), ProjectionError> {
    let _turn = db.write_turn().await;
    let mut tx = db.pool().begin().await?;
    if db.backend() == Backend::Postgres {
        // Batch ids then follow commit order across nodes, which the rollups' tail relies on:
        // no id below one already read can still commit. One insert a node every 25 ms.
        sqlx::query("SELECT pg_advisory_xact_lock(7202611)")
            .execute(&mut *tx)
            .await?;
    }
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
    // How far the spool is stored, with what it stored: after a crash the node goes on from
    // here, storing nothing twice and skipping nothing.
    sqlx::query(
        "INSERT INTO usage_spool_checkpoints (spool, position) VALUES ($1, $2) \
         ON CONFLICT (spool) DO UPDATE SET position = excluded.position",
    )
    .bind(spool)
    .bind(reached.stored())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("keyledger_usage_records_written_total").increment(batch.records as u64);
    Ok(())
}
