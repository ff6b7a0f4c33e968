//! The usage writer: it stores what the edge spooled, in batches, with how far it has stored.

use super::*;

/// Where the spool is and how large it may grow.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: std::path::PathBuf,
    pub max_bytes: u64,
}

/// Opens the node's spool (stored records are passed by, segments an earlier process left are
/// read first) and starts the writer. Every 25 ms it takes what the edge has spooled and stores
/// it in one transaction, with the spool position it reached; told to finish, it stores what is
/// left and ends. What the database refuses stays in the spool and is tried again.
///
/// It sleeps between batches rather than waiting for records: a writer woken by every request
/// would commit batches of a handful of records. `written` is called after every write: the key
/// usage reader reads its figures again, the live feed reads the new batch.
pub async fn spawn(
    db: Database,
    spool: &SpoolConfig,
    written: impl Fn() + Send + 'static,
) -> Result<(UsageRecorder, UsageWriter), ProjectionError> {
    let claimed = spool::Claimed::claim(&spool.dir).map_err(|e| ProjectionError::Usage(e.to_string()))?;
    let stored: Option<i64> = sqlx::query_scalar("SELECT position FROM usage_spool_checkpoints WHERE spool = $1")
        .bind(claimed.id())
        .fetch_optional(db.pool())
        .await?;
    let stored = stored.map_or(Position { segment: 0, offset: 0 }, Position::from_stored);
    let (spool, reader) = claimed
        .open(stored, spool.max_bytes)
        .map_err(|e| ProjectionError::Usage(e.to_string()))?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let handle =
        tokio::spawn(write_spooled(db, reader, stopping, written).instrument(tracing::info_span!("usage_writer")));
    Ok((UsageRecorder { spool }, UsageWriter { handle, stop }))
}

async fn write_spooled(
    db: Database,
    mut reader: Reader,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    written: impl Fn() + Send + 'static,
) {
    // Kept from flush to flush: a fresh buffer each time grew by doubling into new pages, and
    // the kernel's zeroing of them was a tenth of the writer's CPU.
    let mut bytes = Vec::new();
    let mut json = Vec::new();
    let mut subjects = Subjects::default();
    // A chunk taken and not yet stored: tried again as it is, so that its decisions are
    // counted once.
    let mut pending: Option<Chunk> = None;
    let mut closed = false;
    let mut failures = 0u32;
    while !closed {
        // Decided before the spool is read: what was spooled before the stop is stored.
        closed = tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
            _ = stopping.wait_for(|stop| *stop) => true,
        } || *stopping.borrow();
        loop {
            let chunk = match pending.take() {
                Some(chunk) => chunk,
                None => match reader.take(CHUNK, std::mem::take(&mut bytes)) {
                    Ok(chunk) => {
                        count_decisions(&chunk);
                        chunk
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "usage spool not read; trying again");
                        break;
                    }
                },
            };
            if chunk.records == 0 {
                // Segments passed without a record: nothing to store, but passed.
                reader.stored(chunk.end);
                bytes = chunk.into_buffer();
                break;
            }
            let full = chunk.records == CHUNK;
            match flush(&db, &mut subjects, reader.spool_id(), chunk, std::mem::take(&mut json)).await {
                Flushed::Stored(chunk, buffer) => {
                    failures = 0;
                    json = buffer;
                    reader.stored(chunk.end);
                    bytes = chunk.into_buffer();
                    written();
                    if !full {
                        break;
                    }
                }
                Flushed::Failed(chunk, e) => {
                    failures += 1;
                    tracing::error!(error = %e, failures, "usage records not stored yet: kept in the spool, tried again");
                    metrics::counter!("keyledger_usage_write_failures_total").increment(1);
                    // Without it (its encoding panicked) the reader takes its records again.
                    pending = chunk;
                    break;
                }
            }
        }
        if failures > 0 && !closed {
            // 100 ms more each time, up to 3 s between attempts while the database refuses.
            let wait = Duration::from_millis(100 * u64::from(failures.min(30)));
            closed = tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                _ = stopping.wait_for(|stop| *stop) => true,
            };
        }
    }
}

fn count_decisions(chunk: &Chunk) {
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for r in chunk.records() {
        match counts.iter_mut().find(|(c, _)| *c == r.code) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.code, 1)),
        }
    }
    for (code, n) in counts {
        metrics::counter!(DECISIONS, "code" => code.to_owned()).increment(n);
    }
}

enum Flushed {
    /// The chunk, and the encoding buffer to be filled again.
    Stored(Chunk, Vec<u8>),
    Failed(Option<Chunk>, ProjectionError),
}

/// Stores one chunk: numbers its new subjects, encodes it, appends it with the spool position it
/// reaches.
async fn flush(db: &Database, subjects: &mut Subjects, spool: &str, chunk: Chunk, buffer: Vec<u8>) -> Flushed {
    let plan = {
        let mut records: Vec<Spooled<'_>> = Vec::with_capacity(chunk.records);
        records.extend(chunk.records());
        subjects.plan(&records)
    };
    let mut plan = match plan {
        Ok(plan) => plan,
        Err(e) => return Flushed::Failed(Some(chunk), ProjectionError::Usage(e.to_string())),
    };
    if let Err(e) = subjects.number(db, &mut plan).await {
        return Flushed::Failed(Some(chunk), e);
    }
    // Encoding a chunk takes milliseconds: off the async workers, so that requests queued behind
    // the writer do not wait for it.
    let encoded = tokio::task::spawn_blocking(move || {
        let encoded = {
            let mut records: Vec<Spooled<'_>> = Vec::with_capacity(chunk.records);
            records.extend(chunk.records());
            Encoded::of(&records, plan, buffer)
        };
        (chunk, encoded)
    })
    .await;
    let (chunk, encoded) = match encoded {
        Ok((chunk, Ok(encoded))) => (chunk, encoded),
        Ok((chunk, Err(e))) => return Flushed::Failed(Some(chunk), ProjectionError::Usage(e.to_string())),
        Err(e) => return Flushed::Failed(None, ProjectionError::Usage(format!("usage encoding failed: {e}"))),
    };
    match write(db, &encoded, spool, chunk.end).await {
        Ok(()) => Flushed::Stored(chunk, encoded.into_buffer()),
        Err(e) => Flushed::Failed(Some(chunk), e),
    }
}
