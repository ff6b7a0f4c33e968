//! Usage records summed into rollups: per period bucket, tenant, key, endpoint, plugin, outcome
//! and status code, the requests, their latency and its sketch; and the same summed without the
//! key, the endpoint or both (the grains), so that a figure is read from the fewest rows that
//! hold it.

use super::minute::{Minute, Shared};
use super::{Grain, Outcome, Period, RollupCell, SketchError, UsageEntry};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// What a rollup row is about: absent parts (and parts its grain does not keep) are empty, so
/// that a row has one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub grain: Grain,
    pub period: Period,
    pub bucket: DateTime<Utc>,
    pub tenant: String,
    pub key_id: String,
    pub endpoint_id: String,
    pub plugin: String,
    pub outcome: Outcome,
    pub status: u16,
}

impl RollupKey {
    /// The row of `grain` that this (finer) row's requests also count in.
    pub fn at_grain(&self, grain: Grain) -> RollupKey {
        let keep = |kept: bool, part: &String| if kept { part.clone() } else { String::new() };
        RollupKey {
            grain,
            key_id: keep(grain.holds_key(), &self.key_id),
            endpoint_id: keep(grain.holds_endpoint(), &self.endpoint_id),
            plugin: keep(grain.holds_endpoint(), &self.plugin),
            ..self.clone()
        }
    }
}

/// Rollups being built from a run of records, every period at once.
///
/// A record is first counted in the cell of its minute at the finest grain (`add`); `settle`
/// then spreads each such cell over every period and grain. A step reads thousands of records
/// that fall into a few hundred cells, so each record costs one map entry instead of sixteen.
#[derive(Debug, Default)]
pub struct Rollups {
    /// foldhash, not SipHash: a step hashes each cell's key of four texts about twenty times
    /// (settling, merging, holding), and SipHash was 1.6 % of a node's samples at a million
    /// keys. Seeded per map: tenants choose their ids and endpoints.
    cells: HashMap<RollupKey, RollupCell, foldhash::fast::RandomState>,
    /// Records added since the last `settle`, by their detail minute. Keyed by pointers, so a
    /// fixed-seed hash serves: nothing a client sends chooses them.
    minutes: HashMap<Minute, RollupCell, foldhash::fast::FixedState>,
    /// Records before this get no minute cells: minute rollups are kept a day (retention), and
    /// records folded late (a backlog, a rebuild) would otherwise write rows only to be swept.
    minutes_from: Option<DateTime<Utc>>,
}

impl Rollups {
    /// Rollups that keep minute cells only for records from `minutes_from` on.
    pub fn with_minutes_from(minutes_from: DateTime<Utc>) -> Self {
        Rollups {
            minutes_from: Some(minutes_from),
            ..Default::default()
        }
    }

    /// Counts a record; it is in the cells once they are settled. The record's texts are
    /// shared, not copied: a step adds thousands of records about a few subjects.
    pub fn add(&mut self, fact: &UsageEntry) {
        let minute = Minute {
            bucket: Period::Minute.bucket(fact.at),
            tenant: Shared(fact.tenant.clone()),
            key_id: Shared(fact.key_id.clone()),
            endpoint_id: Shared(fact.endpoint_id.clone()),
            plugin: Shared(fact.plugin.clone()),
            outcome: fact.outcome,
            status: fact.status,
        };
        self.minutes.entry(minute).or_default().record(fact.latency_us);
    }

    /// Spreads the records added since the last call over every period and grain.
    pub fn settle(&mut self) -> Result<(), SketchError> {
        for (minute, cell) in std::mem::take(&mut self.minutes) {
            let minute = minute.key();
            // Periods are whole minutes: a minute bucket is before `minutes_from` exactly when
            // its records are.
            let periods = Period::KEPT
                .into_iter()
                .filter(|p| *p != Period::Minute || self.minutes_from.is_none_or(|from| minute.bucket >= from));
            for period in periods {
                let detail = RollupKey {
                    period,
                    bucket: period.bucket(minute.bucket),
                    ..minute.clone()
                };
                for grain in [Grain::Tenant, Grain::Endpoint, Grain::Key] {
                    self.cells.entry(detail.at_grain(grain)).or_default().merge(&cell)?;
                }
                self.cells.entry(detail).or_default().merge(&cell)?;
            }
        }
        Ok(())
    }

    /// Adds a cell built elsewhere (a stored row) to the one of its key.
    pub fn merge(&mut self, key: RollupKey, cell: &RollupCell) -> Result<(), SketchError> {
        self.cells.entry(key).or_default().merge(cell)
    }

    /// Readers see settled cells only.
    fn settled(&self) -> &HashMap<RollupKey, RollupCell, foldhash::fast::RandomState> {
        debug_assert!(self.minutes.is_empty(), "records added but not settled");
        &self.cells
    }

    pub fn get(&self, key: &RollupKey) -> Option<&RollupCell> {
        self.settled().get(key)
    }

    /// The cells of one grain and period, in no order.
    pub fn cells_of(&self, grain: Grain, period: Period) -> impl Iterator<Item = (&RollupKey, &RollupCell)> {
        self.settled()
            .iter()
            .filter(move |(k, _)| k.grain == grain && k.period == period)
    }

    pub fn len(&self) -> usize {
        self.settled().len()
    }

    pub fn is_empty(&self) -> bool {
        self.settled().is_empty()
    }

    /// Every cell, settled, in key order (rows written in one order do not deadlock each other).
    pub fn into_sorted(mut self) -> Result<Vec<(RollupKey, RollupCell)>, SketchError> {
        self.settle()?;
        let mut cells: Vec<_> = self.cells.into_iter().collect();
        cells.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fact(h: u32, m: u32, key: &str, outcome: Outcome, status: u16, latency_us: i64) -> UsageEntry {
        UsageEntry {
            id: crate::usage::UsageId::default(),
            method: "GET".into(),
            path: "/files/1".into(),
            client_ip: None,
            at: Utc.with_ymd_and_hms(2026, 12, 4, h, m, 30).unwrap(),
            tenant: Some("acme".into()),
            key_id: Some(key.into()),
            endpoint_id: Some("files-get".into()),
            plugin: Some("Files".into()),
            outcome,
            status,
            latency_us,
        }
    }

    fn key(period: Period, h: u32, m: u32, k: &str, outcome: Outcome, status: u16) -> RollupKey {
        RollupKey {
            grain: Grain::Detail,
            period,
            bucket: Utc.with_ymd_and_hms(2026, 12, 4, h, m, 0).unwrap(),
            tenant: "acme".into(),
            key_id: k.into(),
            endpoint_id: "files-get".into(),
            plugin: "Files".into(),
            outcome,
            status,
        }
    }

    /// Rollups of `facts`, added and settled.
    fn settled(facts: &[UsageEntry]) -> Rollups {
        let mut rollups = Rollups::default();
        for f in facts {
            rollups.add(f);
        }
        rollups.settle().unwrap();
        rollups
    }

    #[test]
    fn each_record_counts_once_in_its_minute_its_hour_and_its_day() {
        let rollups = settled(&[
            fact(9, 1, "k1", Outcome::Valid, 200, 100),
            fact(9, 1, "k1", Outcome::Valid, 200, 300),
            fact(9, 2, "k1", Outcome::Valid, 200, 500),
            fact(10, 0, "k1", Outcome::RateLimited, 429, 20),
            fact(10, 0, "k2", Outcome::Valid, 200, 40),
        ]);
        let cell = |k: RollupKey| rollups.get(&k).map(|c| (c.requests, c.latency_sum_us));
        assert_eq!(
            cell(key(Period::Minute, 9, 1, "k1", Outcome::Valid, 200)),
            Some((2, 400))
        );
        assert_eq!(
            cell(key(Period::Minute, 9, 2, "k1", Outcome::Valid, 200)),
            Some((1, 500))
        );
        assert_eq!(cell(key(Period::Hour, 9, 0, "k1", Outcome::Valid, 200)), Some((3, 900)));
        assert_eq!(cell(key(Period::Day, 0, 0, "k1", Outcome::Valid, 200)), Some((3, 900)));
        assert_eq!(
            cell(key(Period::Hour, 10, 0, "k1", Outcome::RateLimited, 429)),
            Some((1, 20))
        );
        assert_eq!(cell(key(Period::Day, 0, 0, "k2", Outcome::Valid, 200)), Some((1, 40)));
        // Minutes: k1 at 9:01, 9:02 and 10:00, k2 at 10:00. Hours: k1 valid at 9, k1 limited at
        // 10, k2 at 10. The day and the week: k1 valid, k1 limited, k2. So per key (detail, key);
        // without the key (tenant, endpoint), k1's and k2's valid requests share a row.
        assert_eq!(rollups.len(), 2 * (4 + 3 + 3 + 3) + 2 * (4 + 3 + 2 + 2));
        let day_valid = key(Period::Day, 0, 0, "k1", Outcome::Valid, 200);
        assert_eq!(cell(day_valid.at_grain(Grain::Tenant)), Some((4, 940)));
        assert_eq!(cell(day_valid.at_grain(Grain::Key)), Some((3, 900)));
        let by_endpoint = day_valid.at_grain(Grain::Endpoint);
        assert_eq!(
            (
                by_endpoint.key_id.as_str(),
                by_endpoint.endpoint_id.as_str(),
                by_endpoint.plugin.as_str()
            ),
            ("", "files-get", "Files")
        );
        assert_eq!(cell(by_endpoint), Some((4, 940)));
        for grain in Grain::ALL {
            let requests: u64 = rollups
                .cells
                .iter()
                .filter(|(k, _)| k.grain == grain && k.period == Period::Hour)
                .map(|(_, c)| c.requests)
                .sum();
            assert_eq!(requests, 5, "every record once in the {grain} hours");
        }

        // From 10:00 on only: the minutes before get no cells, hours and days still count them.
        let from = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let mut recent = Rollups::with_minutes_from(from);
        recent.add(&fact(9, 1, "k1", Outcome::Valid, 200, 100));
        recent.add(&fact(10, 0, "k1", Outcome::Valid, 200, 100));
        let periods: Vec<Period> = recent
            .into_sorted()
            .unwrap()
            .into_iter()
            .filter(|(k, _)| k.grain == Grain::Detail)
            .map(|(k, _)| k.period)
            .collect();
        assert_eq!(
            periods,
            [Period::Minute, Period::Hour, Period::Hour, Period::Day, Period::Week],
            "one minute cell, for 10:00"
        );
    }

    #[test]
    fn records_settled_in_several_runs_sum_as_in_one() {
        let facts = [
            fact(9, 1, "k1", Outcome::Valid, 200, 100),
            fact(9, 59, "k1", Outcome::Valid, 200, 200),
            fact(9, 1, "k2", Outcome::Valid, 200, 300),
            fact(10, 0, "k1", Outcome::Valid, 200, 400),
        ];
        let mut once = Rollups::default();
        let mut runs = Rollups::default();
        for (i, f) in facts.iter().enumerate() {
            once.add(f);
            runs.add(f);
            if i % 2 == 1 {
                runs.settle().unwrap();
            }
        }
        let sums = |r: Rollups| -> Vec<(RollupKey, u64, u64)> {
            r.into_sorted()
                .unwrap()
                .into_iter()
                .map(|(k, c)| (k, c.requests, c.latency_sum_us))
                .collect()
        };
        let (once, runs) = (sums(once), sums(runs));
        assert_eq!(once, runs);
        let hour = key(Period::Hour, 9, 0, "k1", Outcome::Valid, 200);
        assert!(once.contains(&(hour, 2, 300)), "two of k1's records in the 9:00 hour");
    }

    /// A reader hands one subject's records the same texts; records with equal texts that are
    /// not shared (`fact` makes new ones each time, as the test above) count alike.
    #[test]
    fn records_sharing_their_texts_count_in_the_same_cells() {
        let first = fact(9, 1, "k1", Outcome::Valid, 200, 100);
        let shared = UsageEntry {
            latency_us: 300,
            ..first.clone()
        };
        let other_key = UsageEntry {
            key_id: Some("k2".into()),
            ..first.clone()
        };
        let rollups = settled(&[first, shared, fact(9, 1, "k1", Outcome::Valid, 200, 500), other_key]);
        let cell = |k: RollupKey| rollups.get(&k).map(|c| (c.requests, c.latency_sum_us));
        assert_eq!(
            cell(key(Period::Minute, 9, 1, "k1", Outcome::Valid, 200)),
            Some((3, 900))
        );
        assert_eq!(
            cell(key(Period::Minute, 9, 1, "k2", Outcome::Valid, 200)),
            Some((1, 100))
        );
        let tenant = key(Period::Minute, 9, 1, "k1", Outcome::Valid, 200).at_grain(Grain::Tenant);
        assert_eq!(cell(tenant), Some((4, 1000)));
    }

    #[test]
    fn a_stored_cell_merges_into_the_new_ones_of_its_key() {
        let mut stored = Rollups::default();
        stored.add(&fact(9, 1, "k1", Outcome::Valid, 200, 100));
        let mut fresh = Rollups::default();
        fresh.add(&fact(9, 1, "k1", Outcome::Valid, 200, 300));
        fresh.settle().unwrap();
        for (k, c) in stored.into_sorted().unwrap() {
            fresh.merge(k, &c).unwrap();
        }
        let hour = fresh.get(&key(Period::Hour, 9, 0, "k1", Outcome::Valid, 200)).unwrap();
        assert_eq!((hour.requests, hour.latency_sum_us), (2, 400));
    }

    #[test]
    fn a_record_without_a_key_or_endpoint_is_kept_under_empty_parts() {
        let mut rollups = Rollups::default();
        rollups.add(&UsageEntry {
            tenant: None,
            key_id: None,
            endpoint_id: None,
            plugin: None,
            ..fact(9, 1, "", Outcome::InvalidKey, 401, 10)
        });
        let sorted = rollups.into_sorted().unwrap();
        assert_eq!(sorted.len(), 4 * 4, "four periods, four grains");
        assert!(sorted.iter().all(|(k, _)| k.tenant.is_empty() && k.key_id.is_empty()));
        assert_eq!(
            (sorted[0].0.grain, sorted[0].0.period),
            (Grain::Tenant, Period::Minute),
            "sorted by grain, then period"
        );
    }
}
