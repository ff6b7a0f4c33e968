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
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Minute, Period::Hour, Period::Day];

    pub fn width(self) -> TimeDelta {
        match self {
            Period::Minute => Duration::minutes(1),
            Period::Hour => Duration::hours(1),
            Period::Day => Duration::days(1),
        }
    }

    /// The start of the bucket `at` falls in: a whole minute, hour or UTC day.
    pub fn bucket(self, at: DateTime<Utc>) -> DateTime<Utc> {
        // Rounding down to a whole number of widths since the epoch only fails for times near
        // the ends of chrono's range; the time itself is then its own bucket.
        at.duration_trunc(self.width()).unwrap_or(at)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
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
