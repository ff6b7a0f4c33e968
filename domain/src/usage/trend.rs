//! A range's errors against the range before it, of the same length: in all and per status
//! code.

use super::Report;

impl Report {
    /// This range's errors against `previous`'s (the range before it, of the same length):
    /// in all and per status code, every code either range had, most errors now first.
    pub fn error_trend(&self, previous: &Report) -> ErrorTrend {
        let mut by_status: Vec<StatusTrend> = self
            .errors_by_status
            .iter()
            .map(|&(status, now)| StatusTrend::new(status, now, 0))
            .collect();
        for &(status, before) in &previous.errors_by_status {
            match by_status.iter_mut().find(|t| t.status == status) {
                Some(t) => *t = StatusTrend::new(status, t.requests, before),
                None => by_status.push(StatusTrend::new(status, 0, before)),
            }
        }
        by_status.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then(b.previous.cmp(&a.previous))
                .then(a.status.cmp(&b.status))
        });
        ErrorTrend {
            errors: self.overall.errors,
            previous: previous.overall.errors,
            change: change(self.overall.errors, previous.overall.errors),
            by_status,
        }
    }
}

/// The relative change from `before` to `now` (0.5 is half as many again, -1 is none left);
/// `None` when there was nothing before.
fn change(now: u64, before: u64) -> Option<f64> {
    (before > 0).then(|| (now as f64 - before as f64) / before as f64)
}

/// Errors now and in the range before.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorTrend {
    pub errors: u64,
    pub previous: u64,
    pub change: Option<f64>,
    pub by_status: Vec<StatusTrend>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusTrend {
    pub status: u16,
    pub requests: u64,
    pub previous: u64,
    pub change: Option<f64>,
}

impl StatusTrend {
    fn new(status: u16, requests: u64, previous: u64) -> Self {
        StatusTrend {
            status,
            requests,
            previous,
            change: change(requests, previous),
        }
    }
}
