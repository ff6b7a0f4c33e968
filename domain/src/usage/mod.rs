//! Usage analytics' vocabulary: the time buckets and ranges figures are computed over, how a
//! request ended, and the rollup cell that keeps counts and latency percentiles mergeable.

mod entry;
mod outcome;
mod period;
mod report;
mod rollup;
mod sketch;

pub use entry::{BadUsageId, UsageEntry, UsageFilter, UsageId, SEQ_SPAN};
pub use outcome::{ErrorRateClass, Outcome, StatusClass, UnknownOutcome, UnknownStatusClass};
pub use period::{Period, Range, UsageQueryError, MAX_POINTS};
pub use report::{Figures, Percentiles, Report, RollupRow};
pub use rollup::{RollupKey, Rollups, UsageFact};
pub use sketch::{RollupCell, SketchError, RELATIVE_ACCURACY};
