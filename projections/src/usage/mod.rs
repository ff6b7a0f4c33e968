//! Usage ingestion: every edge decision becomes a record, written in batches off the request path.

mod encode;
pub mod errors;
pub mod feed;
mod key_usage;
pub mod log;
pub mod retention;
pub mod rollups;
mod spool;
mod subjects;
mod writer;
pub use key_usage::{KeyUsage, KeyUsageReader};
pub use writer::{spawn, SpoolConfig};

use crate::edge_cache::{EndpointEntry, KeyEntry};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use encode::*;
use keyledger_commands::{Backend, Database};
use spool::{Chunk, Position, Reader, Spool, Spooled};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use subjects::*;
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

/// Records a flush stores at most: a backlog (a restart after a crash, an outage of the
/// database) is stored in transactions of this many.
const CHUNK: usize = 50_000;
/// How often the writer stores what the spool holds. Short, so that each flush is a short turn
/// of the edge's core: on a node pinned to one core, 100 ms of records at a time held the edge's
/// answers behind the writer and its SQLite commit for 2 ms and more.
const FLUSH_EVERY: Duration = Duration::from_millis(25);

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

/// The edge's handle: `record` appends to the spool and returns; it never waits for the
/// database.
#[derive(Clone)]
pub struct UsageRecorder {
    spool: Spool,
}

/// `keyledger_edge_decisions_total{code}`: every decision, counted by the writer as it takes
/// the records from the spool (within [`FLUSH_EVERY`]), or by the recorder when the spool is
/// full. A counter incremented by the edge itself is written by every request from every core,
/// and passing its cache line between them cost more than the writer's count.
pub const DECISIONS: &str = "keyledger_edge_decisions_total";

impl UsageRecorder {
    /// Spools a decision with the others of this turn, returning once it is written (or
    /// dropped and counted, when the spool is full or its disk failing): the answer that
    /// follows is never ahead of its record.
    pub async fn record(&self, record: UsageRecord) {
        self.spool.append_grouped(&record).await
    }

    /// Appends a record unless the spool is full (or its disk failing); for callers that would
    /// rather wait than drop, such as the benchmark.
    pub fn try_record(&self, record: &UsageRecord) -> bool {
        self.spool.append(record)
    }
}

/// The writer's handle. At shutdown, once the edge has stopped, [`UsageWriter::finish`] has it
/// store what is spooled and end.
pub struct UsageWriter {
    handle: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl UsageWriter {
    /// Stores what is spooled and ends; `false` when that took longer than `within` (what is
    /// left stays in the spool, for the next start).
    pub async fn finish(self, within: Duration) -> bool {
        let _ = self.stop.send(true);
        matches!(tokio::time::timeout(within, self.handle).await, Ok(Ok(())))
    }
}

#[cfg(test)]
mod tests;
