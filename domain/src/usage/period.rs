//! Time buckets of usage, at UTC boundaries, and the ranges analytics answer for.

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The width of a rollup bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Minute,
    Hour,
    Day,
    /// Seven days from a Thursday 00:00 UTC (whole weeks since the epoch): kept only so that
    /// sums over long ranges read a row a week rather than seven, never shown as a period.
    Week,
}

impl Period {
    /// The periods charts are drawn in.
    pub const ALL: [Period; 3] = [Period::Minute, Period::Hour, Period::Day];
    /// The periods rollups keep.
    pub const KEPT: [Period; 4] = [Period::Minute, Period::Hour, Period::Day, Period::Week];

    pub fn width(self) -> TimeDelta {
        match self {
            Period::Minute => Duration::minutes(1),
            Period::Hour => Duration::hours(1),
            Period::Day => Duration::days(1),
            Period::Week => Duration::days(7),
        }
    }

    /// The start of the bucket `at` falls in: a whole minute, hour or UTC day.
    pub fn bucket(self, at: DateTime<Utc>) -> DateTime<Utc> {
        // Rounding down to a whole number of widths since the epoch only fails for times near
        // the ends of chrono's range; the time itself is then its own bucket.
        at.duration_trunc(self.width()).unwrap_or(at)
    }

    /// `from..until` (both whole days) as runs of whole weeks and of the days around them, so
    /// that a sum over it reads the fewest rows; one run of days when no week fits.
    pub fn days_and_weeks(from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<(Period, DateTime<Utc>, DateTime<Utc>)> {
        let first_week = Period::Week.bucket(from - Duration::nanoseconds(1)) + Period::Week.width();
        let last_week = Period::Week.bucket(until);
        if first_week >= last_week || from >= until {
            return vec![(Period::Day, from, until)];
        }
        [
            (Period::Day, from, first_week),
            (Period::Week, first_week, last_week),
            (Period::Day, last_week, until),
        ]
        .into_iter()
        .filter(|(_, a, b)| a < b)
        .collect()
    }

    /// A period as rollups store it (weeks included).
    pub fn stored(s: &str) -> Result<Period, UsageQueryError> {
        Period::KEPT
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UsageQueryError::UnknownPeriod(s.to_owned()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageQueryError {
    #[error("range must be 24h, 7d, 30d or 90d, not {0:?}")]
    UnknownRange(String),
    #[error("period must be minute, hour or day, not {0:?}")]
    UnknownPeriod(String),
    #[error("a {range} range is not shown per {period}: too many points")]
    TooManyPoints { range: Range, period: Period },
}

impl FromStr for Period {
    type Err = UsageQueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Period::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UsageQueryError::UnknownPeriod(s.to_owned()))
    }
}

/// How far back analytics look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Range {
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
    #[serde(rename = "90d")]
    Quarter,
}

/// No series longer than this: a 90-day range per minute would be 129 600 points.
pub const MAX_POINTS: i64 = 2_160;

impl Range {
    pub const ALL: [Range; 4] = [Range::Day, Range::Week, Range::Month, Range::Quarter];

    pub fn length(self) -> TimeDelta {
        match self {
            Range::Day => Duration::hours(24),
            Range::Week => Duration::days(7),
            Range::Month => Duration::days(30),
            Range::Quarter => Duration::days(90),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
            Range::Quarter => "90d",
        }
    }

    /// The period a chart of this range uses unless told otherwise.
    pub fn default_period(self) -> Period {
        match self {
            Range::Day => Period::Hour,
            _ => Period::Day,
        }
    }

    /// The buckets of a chart ending with the one `now` falls in, oldest first: every bucket,
    /// with or without traffic (24 points for 24 hours per hour).
    pub fn buckets(self, period: Period, now: DateTime<Utc>) -> Result<Vec<DateTime<Utc>>, UsageQueryError> {
        let width = period.width();
        let points = self.length().num_seconds() / width.num_seconds();
        if points > MAX_POINTS {
            return Err(UsageQueryError::TooManyPoints { range: self, period });
        }
        let last = period.bucket(now);
        Ok((0..points).rev().map(|back| last - width * back as i32).collect())
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Range {
    type Err = UsageQueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Range::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UsageQueryError::UnknownRange(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, h, m, s).unwrap()
    }

    #[test]
    fn buckets_start_at_utc_boundaries() {
        let t = at(13, 47, 59);
        assert_eq!(Period::Minute.bucket(t), at(13, 47, 0));
        assert_eq!(Period::Hour.bucket(t), at(13, 0, 0));
        assert_eq!(Period::Day.bucket(t), at(0, 0, 0));
        assert_eq!(
            Period::Hour.bucket(at(14, 0, 0)),
            at(14, 0, 0),
            "a boundary is its own bucket"
        );
    }

    #[test]
    fn a_long_range_of_days_is_read_as_weeks_and_the_days_around_them() {
        let day = |d: u32| Utc.with_ymd_and_hms(2026, 12, d, 0, 0, 0).unwrap();
        // 2026-12-03 is a Thursday: weeks run Thursday to Thursday.
        assert_eq!(Period::Week.bucket(day(9)), day(3));
        assert_eq!(
            Period::days_and_weeks(day(1), day(25)),
            [
                (Period::Day, day(1), day(3)),
                (Period::Week, day(3), day(24)),
                (Period::Day, day(24), day(25))
            ]
        );
        assert_eq!(
            Period::days_and_weeks(day(3), day(10)),
            [(Period::Week, day(3), day(10))],
            "exactly a week"
        );
        assert_eq!(
            Period::days_and_weeks(day(4), day(10)),
            [(Period::Day, day(4), day(10))]
        );
        assert!("week".parse::<Period>().is_err(), "not a period charts are drawn in");
        assert_eq!(Period::stored("week"), Ok(Period::Week));
    }

    #[test]
    fn a_day_per_hour_is_24_points_ending_with_the_current_hour() {
        let buckets = Range::Day.buckets(Period::Hour, at(13, 47, 59)).unwrap();
        assert_eq!(buckets.len(), 24);
        assert_eq!(buckets.last(), Some(&at(13, 0, 0)));
        assert_eq!(buckets[0], Utc.with_ymd_and_hms(2026, 12, 3, 14, 0, 0).unwrap());
        assert!(buckets.windows(2).all(|w| w[1] - w[0] == Duration::hours(1)));
    }

    #[test]
    fn ranges_and_periods_parse_from_what_clients_send_and_nothing_else() {
        assert_eq!("7d".parse::<Range>(), Ok(Range::Week));
        assert_eq!("90d".parse::<Range>(), Ok(Range::Quarter));
        assert!("7D".parse::<Range>().is_err());
        assert_eq!("hour".parse::<Period>(), Ok(Period::Hour));
        assert!("week".parse::<Period>().is_err());
        assert_eq!(Range::Month.buckets(Period::Day, at(1, 0, 0)).unwrap().len(), 30);
        assert_eq!(
            Range::Quarter.buckets(Period::Minute, at(1, 0, 0)),
            Err(UsageQueryError::TooManyPoints {
                range: Range::Quarter,
                period: Period::Minute
            })
        );
    }
}
