//! Latency as rollups keep it: a count, a sum and a mergeable quantile sketch (DDSketch), so that
//! percentiles over any range and filter come from merged rollups, never from raw records.
//! A sketch is stored as the crate's own serde JSON: about 0.7 KB for a few latencies, 1.6 KB
//! for ten thousand spread over five orders of magnitude.

use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

/// A quantile the sketch answers is within this fraction of the true one (README: Analytics).
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Buckets a sketch may hold before it folds its smallest ones together: at 1 % accuracy, 2 048
/// buckets span 1 µs to beyond an hour.
const MAX_BINS: u32 = 2_048;
/// Latencies below 1 µs count as 1 µs: the edge measures in whole microseconds.
const MIN_MICROS: f64 = 1.0;

fn config() -> Config {
    Config::new(RELATIVE_ACCURACY, MAX_BINS, MIN_MICROS)
}

#[derive(Debug, thiserror::Error)]
pub enum SketchError {
    #[error("a stored latency sketch does not decode: {0}")]
    Decode(String),
    #[error("latency sketches of different accuracy cannot merge")]
    Mismatch,
}

/// What starts a sketch stored in the compact form.
const COMPACT: &str = "p1:";

/// One bucket's requests: how many, their total latency, and the sketch of their latencies.
#[derive(Clone, Serialize, Deserialize)]
pub struct RollupCell {
    pub requests: u64,
    pub latency_sum_us: u64,
    sketch: DDSketch,
}

impl Default for RollupCell {
    fn default() -> Self {
        RollupCell {
            requests: 0,
            latency_sum_us: 0,
            sketch: DDSketch::new(config()),
        }
    }
}

impl std::fmt::Debug for RollupCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollupCell")
            .field("requests", &self.requests)
            .field("latency_sum_us", &self.latency_sum_us)
            .finish_non_exhaustive()
    }
}

impl RollupCell {
    /// Counts one request that took `latency_us` (a negative time, which a clock step could
    /// give, counts as 0).
    pub fn record(&mut self, latency_us: i64) {
        let latency = latency_us.max(0) as u64;
        self.requests += 1;
        self.latency_sum_us = self.latency_sum_us.saturating_add(latency);
        self.sketch.add(latency as f64);
    }

    pub fn merge(&mut self, other: &RollupCell) -> Result<(), SketchError> {
        self.sketch.merge(&other.sketch).map_err(|_| SketchError::Mismatch)?;
        self.requests += other.requests;
        self.latency_sum_us = self.latency_sum_us.saturating_add(other.latency_sum_us);
        Ok(())
    }

    /// A cell of counts summed elsewhere (a query's sums), without latencies: it answers no
    /// percentile.
    pub fn counted(requests: u64, latency_sum_us: u64) -> Self {
        RollupCell {
            requests,
            latency_sum_us,
            ..Default::default()
        }
    }

    /// The average latency in microseconds; `None` without requests.
    pub fn average_us(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.latency_sum_us as f64 / self.requests as f64)
    }

    /// The `q` quantile (0.5 for P50) in microseconds, within [`RELATIVE_ACCURACY`]; `None`
    /// without requests or for a `q` outside 0–1.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        self.sketch.quantile(q).ok().flatten()
    }

    /// The sketch as a rollup row stores it.
    /// The sketch as a rollup row stores it: `p1:` and the base64 of its postcard encoding,
    /// whose variable-length integers make most bins a byte (half its JSON, and quicker to read
    /// back).
    pub fn sketch_text(&self) -> String {
        use base64::Engine;
        // A sketch is numbers and arrays of numbers: it always serialises.
        let bytes = postcard::to_allocvec(&self.sketch).unwrap_or_default();
        format!(
            "{COMPACT}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
        )
    }

    /// A cell from a stored row: the compact form, or the JSON rows written before it.
    pub fn stored(requests: u64, latency_sum_us: u64, sketch: &str) -> Result<Self, SketchError> {
        use base64::Engine;
        let sketch = match sketch.strip_prefix(COMPACT) {
            Some(text) => {
                let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(text)
                    .map_err(|e| SketchError::Decode(e.to_string()))?;
                postcard::from_bytes(&bytes).map_err(|e| SketchError::Decode(e.to_string()))?
            }
            None => serde_json::from_str(sketch).map_err(|e| SketchError::Decode(e.to_string()))?,
        };
        Ok(RollupCell {
            requests,
            latency_sum_us,
            sketch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(latencies: impl IntoIterator<Item = i64>) -> RollupCell {
        let mut c = RollupCell::default();
        for l in latencies {
            c.record(l);
        }
        c
    }

    #[test]
    fn percentiles_are_within_the_stated_accuracy() {
        let c = cell(1..=10_000);
        for (q, exact) in [(0.5, 5_000.0), (0.95, 9_500.0), (0.99, 9_900.0)] {
            let got = c.quantile_us(q).unwrap();
            assert!(
                (got - exact).abs() <= exact * RELATIVE_ACCURACY * 1.01,
                "P{q}: {got} for {exact}"
            );
        }
        assert_eq!(c.average_us(), Some(5_000.5));
    }

    #[test]
    fn merged_cells_answer_as_one_cell_of_all_their_requests() {
        let (mut a, b) = (cell(1..=5_000), cell(5_001..=10_000));
        a.merge(&b).unwrap();
        let whole = cell(1..=10_000);
        assert_eq!((a.requests, a.latency_sum_us), (whole.requests, whole.latency_sum_us));
        assert_eq!(a.quantile_us(0.99), whole.quantile_us(0.99));
    }

    fn json_len(c: &RollupCell) -> usize {
        serde_json::to_string(&c.sketch).unwrap().len()
    }

    #[test]
    fn a_stored_cell_reads_back_the_same_and_a_damaged_one_is_an_error() {
        let c = cell([120, 80, 3_000_000, -5]);
        let back = RollupCell::stored(c.requests, c.latency_sum_us, &c.sketch_text()).unwrap();
        assert_eq!(back.quantile_us(0.5), c.quantile_us(0.5));
        assert_eq!(back.requests, 4);
        assert!(RollupCell::stored(1, 1, "not a sketch").is_err());
        assert!(RollupCell::stored(1, 1, "p1:not base64!").is_err());
        // Rows written before the compact form hold the sketch's JSON.
        let json = serde_json::to_string(&c.sketch).unwrap();
        let old = RollupCell::stored(c.requests, c.latency_sum_us, &json).unwrap();
        assert_eq!(old.quantile_us(0.99), c.quantile_us(0.99));
        let typical = cell((0..1_000).map(|i| 200 + i * 5));
        assert!(
            typical.sketch_text().len() * 2 < json_len(&typical),
            "compact: {} against {} bytes of JSON",
            typical.sketch_text().len(),
            json_len(&typical)
        );
        assert_eq!(
            RollupCell::default().quantile_us(0.5),
            None,
            "no requests, no percentile"
        );
    }
}
