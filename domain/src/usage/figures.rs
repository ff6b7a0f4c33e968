//! What analytics count of a part of the traffic: a rollup row as read, a part's sums, and the
//! requests, errors and latency of a part with its percentiles.

use super::{ErrorRateClass, Outcome, RollupCell, StatusClass};
use chrono::{DateTime, Utc};

/// One rollup row of the range, as read.
#[derive(Debug, Clone)]
pub struct RollupRow {
    pub bucket: DateTime<Utc>,
    pub key_id: String,
    pub endpoint_id: String,
    pub plugin: String,
    pub outcome: Outcome,
    pub status: u16,
    pub cell: RollupCell,
}

/// A part's requests summed over a whole range (by the store, or from rows): no bucket, outcome
/// or sketch, which is all that rankings of keys and endpoints need. Parts not summed by are
/// empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartSum {
    pub key_id: String,
    pub endpoint_id: String,
    pub plugin: String,
    pub requests: u64,
    /// Answered 4xx or 5xx ([`StatusClass::is_error`]).
    pub errors: u64,
    pub latency_sum_us: u64,
}

impl PartSum {
    pub fn of(row: &RollupRow) -> Self {
        PartSum {
            key_id: row.key_id.clone(),
            endpoint_id: row.endpoint_id.clone(),
            plugin: row.plugin.clone(),
            requests: row.cell.requests,
            errors: if StatusClass::of(row.status).is_some_and(StatusClass::is_error) {
                row.cell.requests
            } else {
                0
            },
            latency_sum_us: row.cell.latency_sum_us,
        }
    }
}

/// P50, P95 and P99 in milliseconds (within the sketch's relative accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percentiles {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Percentiles {
    fn of(cell: &RollupCell) -> Self {
        let ms = |q| cell.quantile_us(q).map(|us| us / 1000.0);
        Percentiles {
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
        }
    }
}

/// Requests, errors (4xx and 5xx) and latency of a part of the traffic.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub cell: RollupCell,
    pub errors: u64,
}

impl Figures {
    pub(super) fn add(&mut self, row: &RollupRow) {
        // Cells of one accuracy always merge.
        let _ = self.cell.merge(&row.cell);
        if StatusClass::of(row.status).is_some_and(StatusClass::is_error) {
            self.errors += row.cell.requests;
        }
    }

    pub(super) fn add_sum(&mut self, sum: &PartSum) {
        // Cells without sketches always merge.
        let _ = self.cell.merge(&RollupCell::counted(sum.requests, sum.latency_sum_us));
        self.errors += sum.errors;
    }

    pub fn requests(&self) -> u64 {
        self.cell.requests
    }

    pub fn error_rate(&self) -> Option<f64> {
        (self.cell.requests > 0).then(|| self.errors as f64 / self.cell.requests as f64)
    }

    pub fn error_class(&self) -> ErrorRateClass {
        ErrorRateClass::of(self.errors, self.cell.requests)
    }

    pub fn avg_latency_ms(&self) -> Option<f64> {
        self.cell.average_us().map(|us| us / 1000.0)
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles::of(&self.cell)
    }
}
