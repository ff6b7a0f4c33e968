//! Analytics figures computed from rollup rows: totals, the volume series, breakdowns by plugin,
//! outcome, status code, endpoint and key, and latency percentiles merged from the rows'
//! sketches. Pure: the rows come from the caller.

use super::{ErrorRateClass, Outcome, RollupCell, StatusClass};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

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
    fn add(&mut self, row: &RollupRow) {
        // Cells of one accuracy always merge.
        let _ = self.cell.merge(&row.cell);
        if StatusClass::of(row.status).is_some_and(StatusClass::is_error) {
            self.errors += row.cell.requests;
        }
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

/// Everything analytics shows for a range.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub overall: Figures,
    pub successes: u64,
    /// Requests per bucket, every bucket of the range (zeros included), oldest first.
    pub volume: Vec<(DateTime<Utc>, u64)>,
    pub by_plugin: Vec<(String, u64)>,
    pub by_outcome: Vec<(Outcome, u64)>,
    /// Per status code that answered errors (4xx and 5xx).
    pub errors_by_status: Vec<(u16, u64)>,
    /// Per endpoint (with its plugin), most requests first.
    pub endpoints: Vec<(String, String, Figures)>,
    /// Per key, most requests first.
    pub keys: Vec<(String, u64)>,
}

fn descending<K: Ord + Clone>(map: HashMap<K, u64>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

impl Report {
    /// The figures of `rows` over `buckets` (the range's, from [`super::Range::buckets`]).
    pub fn of(rows: &[RollupRow], buckets: &[DateTime<Utc>]) -> Self {
        let mut report = Report::default();
        let mut volume: BTreeMap<DateTime<Utc>, u64> = buckets.iter().map(|b| (*b, 0)).collect();
        let (mut plugins, mut outcomes, mut statuses, mut keys) =
            (HashMap::new(), HashMap::new(), HashMap::new(), HashMap::new());
        let mut endpoints: HashMap<(String, String), Figures> = HashMap::new();
        for row in rows {
            let n = row.cell.requests;
            report.overall.add(row);
            if StatusClass::of(row.status) == Some(StatusClass::Success) {
                report.successes += n;
            }
            if let Some(count) = volume.get_mut(&row.bucket) {
                *count += n;
            }
            if !row.plugin.is_empty() {
                *plugins.entry(row.plugin.clone()).or_default() += n;
            }
            *outcomes.entry(row.outcome).or_default() += n;
            if StatusClass::of(row.status).is_some_and(StatusClass::is_error) {
                *statuses.entry(row.status).or_default() += n;
            }
            if !row.endpoint_id.is_empty() {
                endpoints
                    .entry((row.endpoint_id.clone(), row.plugin.clone()))
                    .or_default()
                    .add(row);
            }
            if !row.key_id.is_empty() {
                *keys.entry(row.key_id.clone()).or_default() += n;
            }
        }
        report.volume = volume.into_iter().collect();
        report.by_plugin = descending(plugins);
        report.by_outcome = descending(outcomes);
        report.errors_by_status = descending(statuses);
        report.keys = descending(keys);
        let mut endpoints: Vec<(String, String, Figures)> =
            endpoints.into_iter().map(|((id, plugin), f)| (id, plugin, f)).collect();
        endpoints.sort_by(|a, b| b.2.requests().cmp(&a.2.requests()).then_with(|| a.0.cmp(&b.0)));
        report.endpoints = endpoints;
        report
    }

    pub fn success_rate(&self) -> Option<f64> {
        let requests = self.overall.requests();
        (requests > 0).then(|| self.successes as f64 / requests as f64)
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(hour: u32, key: &str, endpoint: &str, outcome: Outcome, status: u16, latencies: &[i64]) -> RollupRow {
        let mut cell = RollupCell::default();
        for l in latencies {
            cell.record(*l);
        }
        RollupRow {
            bucket: Utc.with_ymd_and_hms(2026, 12, 4, hour, 0, 0).unwrap(),
            key_id: key.into(),
            endpoint_id: endpoint.into(),
            plugin: if endpoint.is_empty() {
                String::new()
            } else {
                "Files".into()
            },
            outcome,
            status,
            cell,
        }
    }

    #[test]
    fn a_known_day_gives_the_figures_computed_by_hand() {
        let buckets: Vec<_> = (8..12)
            .map(|h| Utc.with_ymd_and_hms(2026, 12, 4, h, 0, 0).unwrap())
            .collect();
        let rows = [
            row(9, "k1", "e1", Outcome::Valid, 200, &[1_000, 3_000]),
            row(9, "k1", "e1", Outcome::Valid, 500, &[8_000]),
            row(10, "k2", "e2", Outcome::RateLimited, 429, &[100]),
            row(11, "", "", Outcome::InvalidKey, 401, &[50]),
        ];
        let r = Report::of(&rows, &buckets);
        assert_eq!(r.overall.requests(), 5);
        assert_eq!(r.overall.errors, 3, "500, 429 and 401");
        assert_eq!(r.success_rate(), Some(0.4));
        assert_eq!(r.overall.avg_latency_ms(), Some(12_150.0 / 5.0 / 1000.0));
        let hours: Vec<u64> = r.volume.iter().map(|(_, n)| *n).collect();
        assert_eq!(hours, [0, 3, 1, 1], "every bucket, zeros included");
        assert_eq!(r.by_plugin, [("Files".to_owned(), 4)]);
        assert_eq!(
            r.by_outcome,
            [(Outcome::Valid, 3), (Outcome::InvalidKey, 1), (Outcome::RateLimited, 1)]
        );
        assert_eq!(r.errors_by_status, [(401, 1), (429, 1), (500, 1)]);

        // Against a range before with two 500s and a 404: 500 halved, 404 gone, the rest new.
        let before = Report::of(
            &[
                row(9, "k1", "e1", Outcome::Valid, 500, &[1, 2]),
                row(10, "k1", "e1", Outcome::Valid, 404, &[1]),
            ],
            &buckets,
        );
        let trend = r.error_trend(&before);
        assert_eq!((trend.errors, trend.previous, trend.change), (3, 3, Some(0.0)));
        let by: Vec<(u16, u64, u64, Option<f64>)> = trend
            .by_status
            .iter()
            .map(|t| (t.status, t.requests, t.previous, t.change))
            .collect();
        assert_eq!(
            by,
            [
                (500, 1, 2, Some(-0.5)),
                (401, 1, 0, None),
                (429, 1, 0, None),
                (404, 0, 1, Some(-1.0))
            ]
        );
        assert_eq!(r.keys, [("k1".to_owned(), 3), ("k2".to_owned(), 1)]);
        let (id, plugin, e1) = &r.endpoints[0];
        assert_eq!(
            (id.as_str(), plugin.as_str(), e1.requests(), e1.errors),
            ("e1", "Files", 3, 1)
        );
        assert_eq!(e1.error_class(), ErrorRateClass::Red, "1 of 3 failed");
        let p50 = e1.percentiles().p50_ms.unwrap();
        assert!((p50 - 3.0).abs() <= 3.0 * 0.011, "P50 of 1, 3 and 8 ms: {p50}");
    }

    #[test]
    fn no_rows_is_an_empty_report_with_every_bucket_at_zero() {
        let buckets = [Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap()];
        let r = Report::of(&[], &buckets);
        assert_eq!((r.overall.requests(), r.success_rate()), (0, None));
        assert_eq!(r.volume.len(), 1);
        assert_eq!(r.overall.percentiles(), Percentiles::default());
    }
}
