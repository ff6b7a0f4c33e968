//! Usage analytics' vocabulary: the time buckets and ranges figures are computed over, how a
//! request ended, and the rollup cell that keeps counts and latency percentiles mergeable.

mod entry;
mod export;
mod figures;
mod grain;
mod minute;
mod outcome;
mod period;
mod report;
mod rollup;
mod sketch;
mod trend;

pub use entry::{BadUsageId, UsageEntry, UsageFilter, UsageId, SEQ_SPAN};
pub use export::{ExportError, ExportFormat, ExportWindow, Grouping, MAX_EXPORT_DAYS};
pub use figures::{Figures, PartSum, Percentiles, RollupRow};
pub use grain::{Grain, UnknownGrain};
pub use outcome::{ErrorRateClass, Outcome, StatusClass, UnknownOutcome, UnknownStatusClass};
pub use period::{Period, Range, UsageQueryError, MAX_POINTS};
pub use report::{Report, ReportRows};
pub use rollup::{RollupKey, Rollups};
pub use sketch::{RollupCell, SketchError, RELATIVE_ACCURACY};
pub use trend::{ErrorTrend, StatusTrend};
