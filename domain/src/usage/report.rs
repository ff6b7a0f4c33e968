//! Analytics figures computed from rollup rows: totals, the volume series, breakdowns by plugin,
//! outcome, status code, endpoint and key, and latency percentiles merged from the rows'
//! sketches. Pure: the rows come from the caller.

use super::{Figures, Outcome, PartSum, RollupRow, StatusClass};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

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

/// The rows a report is computed from, each read at the grain that holds it (see
/// [`super::Grain::answering`]): the same range and filter, summed without the parts a figure
/// does not need.
#[derive(Debug, Clone, Copy)]
pub struct ReportRows<'a> {
    /// Per bucket, with sketches: the totals, the series, the outcomes, the status codes and
    /// the percentiles.
    pub overall: &'a [RollupRow],
    /// Per endpoint and plugin: the plugins and the endpoints.
    pub endpoints: &'a [PartSum],
    /// Per key: the keys.
    pub keys: &'a [PartSum],
}

impl Report {
    /// The figures of `rows` over `buckets` (the range's, from [`super::Range::buckets`]).
    pub fn of(rows: &[RollupRow], buckets: &[DateTime<Utc>]) -> Self {
        let sums: Vec<PartSum> = rows.iter().map(PartSum::of).collect();
        let mut report = Report::of_rows(
            ReportRows {
                overall: rows,
                endpoints: &sums,
                keys: &sums,
            },
            buckets,
        );
        report.with_endpoint_latency(rows);
        report
    }

    /// The figures of rows read per figure, over `buckets`.
    pub fn of_rows(rows: ReportRows<'_>, buckets: &[DateTime<Utc>]) -> Self {
        let mut report = Report::default();
        let mut volume: BTreeMap<DateTime<Utc>, u64> = buckets.iter().map(|b| (*b, 0)).collect();
        let (mut outcomes, mut statuses) = (HashMap::new(), HashMap::new());
        for row in rows.overall {
            let n = row.cell.requests;
            report.overall.add(row);
            if StatusClass::of(row.status) == Some(StatusClass::Success) {
                report.successes += n;
            }
            if let Some(count) = volume.get_mut(&row.bucket) {
                *count += n;
            }
            *outcomes.entry(row.outcome).or_default() += n;
            if StatusClass::of(row.status).is_some_and(StatusClass::is_error) {
                *statuses.entry(row.status).or_default() += n;
            }
        }
        let mut plugins = HashMap::new();
        let mut endpoints: HashMap<(String, String), Figures> = HashMap::new();
        for sum in rows.endpoints {
            if !sum.plugin.is_empty() {
                *plugins.entry(sum.plugin.clone()).or_default() += sum.requests;
            }
            if !sum.endpoint_id.is_empty() {
                endpoints
                    .entry((sum.endpoint_id.clone(), sum.plugin.clone()))
                    .or_default()
                    .add_sum(sum);
            }
        }
        let mut keys = HashMap::new();
        for sum in rows.keys.iter().filter(|s| !s.key_id.is_empty()) {
            *keys.entry(sum.key_id.clone()).or_default() += sum.requests;
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

    /// Each endpoint's figures again from `rows` with sketches (those of the busiest, read
    /// after ranking them from rows without), so that their percentiles are known; an endpoint
    /// `rows` do not have keeps what it had.
    pub fn with_endpoint_latency(&mut self, rows: &[RollupRow]) {
        let mut sketched: HashMap<(&str, &str), Figures> = HashMap::new();
        for row in rows {
            sketched
                .entry((row.endpoint_id.as_str(), row.plugin.as_str()))
                .or_default()
                .add(row);
        }
        for (id, plugin, figures) in &mut self.endpoints {
            if let Some(f) = sketched.remove(&(id.as_str(), plugin.as_str())) {
                *figures = f;
            }
        }
    }

    pub fn success_rate(&self) -> Option<f64> {
        let requests = self.overall.requests();
        (requests > 0).then(|| self.successes as f64 / requests as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{ErrorRateClass, Percentiles, RollupCell};
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
    fn a_report_from_the_grains_equals_the_one_from_the_detailed_rows() {
        use crate::usage::{Grain, Period, Rollups, UsageEntry, UsageId};
        let mut rollups = Rollups::default();
        let mut draw = 7u64;
        for i in 0..400u32 {
            draw = draw.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let pick = (draw >> 33) as usize;
            let (outcome, status) = [
                (Outcome::Valid, 200),
                (Outcome::Valid, 502),
                (Outcome::RateLimited, 429),
                (Outcome::InvalidKey, 401),
            ][pick % 4];
            rollups.add(&UsageEntry {
                id: UsageId::default(),
                method: "GET".into(),
                path: "/x".into(),
                client_ip: None,
                at: Utc.with_ymd_and_hms(2026, 12, 4, 8 + i % 4, 0, 0).unwrap(),
                tenant: Some("acme".into()),
                key_id: (outcome != Outcome::InvalidKey).then(|| format!("k{}", pick % 5).into()),
                endpoint_id: Some(format!("e{}", pick % 3).into()),
                plugin: Some(format!("P{}", pick % 2).into()),
                outcome,
                status,
                latency_us: 100 + (pick % 9_000) as i64,
            });
        }
        rollups.settle().unwrap();
        let rows = |grain: Grain, sketches: bool| -> Vec<RollupRow> {
            rollups
                .cells_of(grain, Period::Hour)
                .map(|(k, c)| RollupRow {
                    bucket: k.bucket,
                    key_id: k.key_id.clone(),
                    endpoint_id: k.endpoint_id.clone(),
                    plugin: k.plugin.clone(),
                    outcome: k.outcome,
                    status: k.status,
                    cell: if sketches {
                        c.clone()
                    } else {
                        RollupCell::counted(c.requests, c.latency_sum_us)
                    },
                })
                .collect()
        };
        let buckets: Vec<_> = (8..12)
            .map(|h| Utc.with_ymd_and_hms(2026, 12, 4, h, 0, 0).unwrap())
            .collect();
        let detail = Report::of(&rows(Grain::Detail, true), &buckets);
        // As the store sums them: per endpoint and plugin, per key.
        let summed = |grain: Grain| -> Vec<PartSum> {
            let mut by: HashMap<(String, String, String), PartSum> = HashMap::new();
            for row in rows(grain, false) {
                let part = PartSum::of(&row);
                let sum = by
                    .entry((part.key_id.clone(), part.endpoint_id.clone(), part.plugin.clone()))
                    .or_insert_with(|| PartSum {
                        requests: 0,
                        errors: 0,
                        latency_sum_us: 0,
                        ..part.clone()
                    });
                sum.requests += part.requests;
                sum.errors += part.errors;
                sum.latency_sum_us += part.latency_sum_us;
            }
            by.into_values().collect()
        };
        let (tenant, endpoints, keys) = (rows(Grain::Tenant, true), summed(Grain::Endpoint), summed(Grain::Key));
        let mut grains = Report::of_rows(
            ReportRows {
                overall: &tenant,
                endpoints: &endpoints,
                keys: &keys,
            },
            &buckets,
        );
        assert_eq!(grains.endpoints[0].2.percentiles(), Percentiles::default(), "not yet");
        grains.with_endpoint_latency(&rows(Grain::Endpoint, true));
        assert!(tenant.len() < rows(Grain::Detail, true).len() / 4, "fewer rows");
        assert_eq!(grains.overall.requests(), 400);
        assert_eq!(
            (grains.overall.requests(), grains.overall.errors, grains.successes),
            (detail.overall.requests(), detail.overall.errors, detail.successes)
        );
        assert_eq!(grains.overall.percentiles(), detail.overall.percentiles());
        assert_eq!(grains.volume, detail.volume);
        assert_eq!(grains.by_plugin, detail.by_plugin);
        assert_eq!(grains.by_outcome, detail.by_outcome);
        assert_eq!(grains.errors_by_status, detail.errors_by_status);
        assert_eq!(grains.keys, detail.keys);
        let summary = |r: &Report| -> Vec<(String, String, u64, u64, Percentiles)> {
            r.endpoints
                .iter()
                .map(|(id, p, f)| (id.clone(), p.clone(), f.requests(), f.errors, f.percentiles()))
                .collect()
        };
        assert_eq!(summary(&grains), summary(&detail));
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
