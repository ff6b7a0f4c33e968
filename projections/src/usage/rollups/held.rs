//! The cells a rollups worker wrote last, held so that its next step need not read them back.
//! Reading a step's stored cells (a query per hundred, each row decoded with its latency sketch)
//! was the costliest part of a step that touches many keys' cells: under a flood of invalid keys
//! spread over 2 000 keys it took 0.6 µs of the edge's core per request (README: Edge
//! performance, eighth step).
//!
//! Held cells are the stored ones only while no one else has written the rollups since: each
//! step writes its worker's mark into the checkpoint with the batch it reached, and a worker
//! trusts what it holds only when it finds both as it left them. Another node's step, a clear or
//! a rebuild changes the mark; a step whose commit failed leaves the batch where it was.

use keyledger_domain::usage::{Period, RollupCell, RollupKey, SketchError};
use std::collections::HashMap;

/// A step's cell, with its key.
type Cell = (RollupKey, RollupCell);

/// Cells held at most (each a key of four texts and a latency sketch: a few hundred bytes).
const HELD_MAX: usize = 32_768;
/// A cell no step wrote in this many steps is let go.
const UNTOUCHED_STEPS: u64 = 16;

pub(super) struct Held {
    mark: i64,
    /// The checkpoint the held cells are current at.
    at: Option<i64>,
    step: u64,
    cells: HashMap<RollupKey, (RollupCell, u64), foldhash::fast::RandomState>,
}

impl Held {
    /// Holds nothing yet; `mark` (non-zero) names this worker in the checkpoint.
    pub(super) fn new() -> Self {
        Held {
            mark: rand::random::<i64>() | 1,
            at: None,
            step: 0,
            cells: HashMap::default(),
        }
    }

    pub(super) fn mark(&self) -> i64 {
        self.mark
    }

    /// Called with the checkpoint a step found (locked): lets go of every cell unless that is
    /// where this worker left it.
    pub(super) fn found(&mut self, batch_id: i64, folded_by: i64) {
        if self.at != Some(batch_id) || folded_by != self.mark {
            self.at = None;
            self.cells.clear();
        }
    }

    /// Adds to each fresh cell the stored cell it holds, in place; returns the cells it holds
    /// nothing for (to be read back), in the order given.
    pub(super) fn merge_into<'a>(&self, fresh: &'a mut [Cell]) -> Result<Vec<&'a mut Cell>, SketchError> {
        let mut unheld = Vec::new();
        for cell in fresh {
            match self.cells.get(&cell.0) {
                Some((stored, _)) => cell.1.merge(stored)?,
                None => unheld.push(cell),
            }
        }
        Ok(unheld)
    }

    /// After a step's commit: holds the cells it wrote (now stored) as current at `upto`. Lets go
    /// of cells no longer written (minutes the retention sweep forgets, cells untouched for
    /// [`UNTOUCHED_STEPS`]) and, past [`HELD_MAX`], of all but this step's, or of all.
    pub(super) fn wrote(
        &mut self,
        upto: i64,
        cells: impl IntoIterator<Item = (RollupKey, RollupCell)>,
        minutes_from: chrono::DateTime<chrono::Utc>,
    ) {
        self.step += 1;
        let step = self.step;
        for (key, cell) in cells {
            self.cells.insert(key, (cell, step));
        }
        self.cells.retain(|key, (_, written)| {
            *written + UNTOUCHED_STEPS > step && !(key.period == Period::Minute && key.bucket < minutes_from)
        });
        if self.cells.len() > HELD_MAX {
            self.cells.retain(|_, (_, written)| *written == step);
        }
        if self.cells.len() > HELD_MAX {
            self.cells.clear();
        }
        self.at = Some(upto);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.cells.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};
    use keyledger_domain::usage::{Grain, Outcome};

    fn key(period: Period, bucket: DateTime<Utc>, key_id: &str) -> RollupKey {
        RollupKey {
            grain: Grain::Key,
            period,
            bucket,
            tenant: "t".into(),
            key_id: key_id.into(),
            endpoint_id: String::new(),
            plugin: String::new(),
            outcome: Outcome::Valid,
            status: 204,
        }
    }

    fn cell(requests: u64) -> RollupCell {
        RollupCell::counted(requests, requests * 10)
    }

    #[test]
    fn held_cells_are_added_to_fresh_ones_only_where_the_worker_left_the_checkpoint() {
        let now = Utc::now();
        let hour = Period::Hour.bucket(now);
        let mut held = Held::new();
        held.found(0, 0);
        held.wrote(7, [(key(Period::Hour, hour, "a"), cell(3))], now);
        held.found(7, held.mark());
        let mut fresh = vec![
            (key(Period::Hour, hour, "a"), cell(2)),
            (key(Period::Hour, hour, "b"), cell(1)),
        ];
        let unheld = held.merge_into(&mut fresh).unwrap();
        assert_eq!(unheld.len(), 1);
        assert_eq!(unheld[0].0.key_id, "b", "to be read back");
        let merged = &fresh[0];
        assert_eq!((merged.1.requests, merged.1.latency_sum_us), (5, 50));
        held.found(7, held.mark() ^ 2);
        assert_eq!(held.len(), 0, "another worker's mark");
        held.wrote(9, [(key(Period::Hour, hour, "a"), cell(3))], now);
        held.found(8, held.mark());
        assert_eq!(held.len(), 0, "not the batch it left");
    }

    #[test]
    fn a_worker_lets_go_of_forgotten_minutes_untouched_cells_and_all_past_its_bound() {
        let now = Utc::now();
        let (minute, hour) = (Period::Minute.bucket(now), Period::Hour.bucket(now));
        let mut held = Held::new();
        held.wrote(
            1,
            [
                (key(Period::Minute, minute - Duration::days(2), "a"), cell(1)),
                (key(Period::Minute, minute, "a"), cell(1)),
                (key(Period::Hour, hour, "a"), cell(1)),
            ],
            minute - Duration::days(1),
        );
        assert_eq!(held.len(), 2, "a minute the retention sweep forgets is let go");
        for step in 0..UNTOUCHED_STEPS {
            held.wrote(2 + step as i64, [(key(Period::Hour, hour, "a"), cell(1))], minute);
        }
        assert_eq!(held.len(), 1, "the minute no step wrote for {UNTOUCHED_STEPS} steps");
        let many = (0..=HELD_MAX).map(|i| (key(Period::Hour, hour, &i.to_string()), cell(1)));
        held.wrote(100, many, minute);
        assert_eq!(held.len(), 0, "more than it may hold");
    }
}
