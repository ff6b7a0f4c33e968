//! What an attempt's answer means and when the next attempt is due: the delivery policy every
//! dispatcher worker follows.

use chrono::{DateTime, Duration, Utc};
use std::fmt;
use std::str::FromStr;

/// The default schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after each failure.
pub const DEFAULT_SCHEDULE: [i64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
/// How far each wait is spread either way, so that receivers coming back are not hit by every
/// retry at once.
const JITTER: f64 = 0.2;
/// A `Retry-After` longer than this is not waited for; the schedule's wait is used.
const MAX_RETRY_AFTER: i64 = 24 * 3_600;

/// The waits between attempts (`--webhook-retry-schedule`, seconds, comma-separated): after
/// the last one fails, the delivery has failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("a retry schedule is seconds, comma-separated, each from 1 to 604800 (for example 5,300,1800)")]
    Malformed,
    #[error("a retry schedule holds 1 to 30 waits")]
    Length,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(DEFAULT_SCHEDULE.iter().map(|s| Duration::seconds(*s)).collect())
    }
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let waits = s
            .split(',')
            .map(|w| match w.trim().parse::<i64>() {
                Ok(secs) if (1..=604_800).contains(&secs) => Ok(Duration::seconds(secs)),
                _ => Err(ScheduleError::Malformed),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // `split` yields at least one wait, and an empty one is malformed.
        if waits.len() > 30 {
            return Err(ScheduleError::Length);
        }
        Ok(RetrySchedule(waits))
    }
}

/// As the flag takes it: seconds, comma-separated.
impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waits: Vec<String> = self.0.iter().map(|w| w.num_seconds().to_string()).collect();
        f.write_str(&waits.join(","))
    }
}

impl RetrySchedule {
    /// Attempts a delivery gets in all: the first and one per wait.
    pub fn attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    /// When attempt `failed` + 1 is due after attempt `failed` (1 for the first) failed at
    /// `now`, or `None` when it was the last. `spread` is a number the caller drew in [0, 1):
    /// the wait is moved by up to 20 % either way. A receiver's `Retry-After` within a day is
    /// honoured when it asks for longer than the schedule would wait.
    pub fn next(
        &self,
        failed: u32,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
        spread: f64,
    ) -> Option<DateTime<Utc>> {
        let wait = *self.0.get(failed.checked_sub(1)? as usize)?;
        let factor = 1.0 + JITTER * (2.0 * spread.clamp(0.0, 1.0) - 1.0);
        let jittered = Duration::milliseconds((wait.num_milliseconds() as f64 * factor) as i64);
        let wait = match retry_after {
            Some(asked) if asked > jittered && asked <= Duration::seconds(MAX_RETRY_AFTER) => asked,
            _ => jittered,
        };
        Some(now + wait)
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx: delivered.
    Delivered,
    /// 410 Gone: the receiver is gone for good; the subscription is disabled at once.
    Gone,
    /// Any other status (redirects are not followed: a 3xx is a failure), a timeout, a refused
    /// connection or a blocked address: tried again on the schedule.
    Failed,
}

impl Answer {
    pub fn of_status(status: u16) -> Answer {
        match status {
            200..=299 => Answer::Delivered,
            410 => Answer::Gone,
            _ => Answer::Failed,
        }
    }
}

/// Whether a subscription whose deliveries have all failed since `failing_since` is to be
/// disabled at `now` (after `period`, 5 days by default).
pub fn failing_too_long(failing_since: Option<DateTime<Utc>>, now: DateTime<Utc>, period: Duration) -> bool {
    failing_since.is_some_and(|since| now - since >= period)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
    }

    #[test]
    fn the_default_schedule_waits_5s_5min_30min_2h_5h_10h_10h_then_gives_up() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 8);
        let waits: Vec<i64> = (1..=7)
            .map(|failed| (schedule.next(failed, now(), None, 0.5).unwrap() - now()).num_seconds())
            .collect();
        assert_eq!(waits, [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]);
        assert_eq!(
            schedule.next(8, now(), None, 0.5),
            None,
            "the eighth attempt was the last"
        );
        assert_eq!(schedule.next(0, now(), None, 0.5), None);
    }

    #[test]
    fn waits_are_spread_by_up_to_a_fifth_either_way() {
        let schedule = RetrySchedule::default();
        let wait = |spread| (schedule.next(2, now(), None, spread).unwrap() - now()).num_seconds();
        assert_eq!((wait(0.0), wait(0.5), wait(0.999_999)), (240, 300, 359));
        assert_eq!(wait(7.0), 360, "a draw out of range is clamped");
    }

    #[test]
    fn retry_after_is_honoured_when_longer_and_within_a_day() {
        let schedule = RetrySchedule::default();
        let wait =
            |asked: i64| (schedule.next(1, now(), Some(Duration::seconds(asked)), 0.5).unwrap() - now()).num_seconds();
        assert_eq!(wait(120), 120);
        assert_eq!(wait(2), 5, "shorter than the schedule: the schedule");
        assert_eq!(wait(3 * 86_400), 5, "beyond a day: the schedule");
    }

    #[test]
    fn a_schedule_is_parsed_from_seconds_and_refused_when_malformed() {
        let schedule: RetrySchedule = "1, 2,3".parse().unwrap();
        assert_eq!(schedule.attempts(), 4);
        assert_eq!(schedule.to_string(), "1,2,3");
        assert_eq!(
            RetrySchedule::default().to_string(),
            "5,300,1800,7200,18000,36000,36000"
        );
        assert_eq!((schedule.next(3, now(), None, 0.5).unwrap() - now()).num_seconds(), 3);
        for bad in ["", "5,,6", "0", "-1", "five", "604801"] {
            assert!(bad.parse::<RetrySchedule>().is_err(), "{bad:?}");
        }
        assert_eq!(
            vec!["1"; 31].join(",").parse::<RetrySchedule>(),
            Err(ScheduleError::Length)
        );
    }

    #[test]
    fn only_2xx_delivers_410_disables_and_redirects_fail() {
        assert_eq!(Answer::of_status(200), Answer::Delivered);
        assert_eq!(Answer::of_status(204), Answer::Delivered);
        assert_eq!(Answer::of_status(410), Answer::Gone);
        for status in [301, 302, 307, 308, 400, 404, 429, 500, 503] {
            assert_eq!(Answer::of_status(status), Answer::Failed, "{status}");
        }
    }

    #[test]
    fn a_subscription_failing_for_the_whole_period_is_to_be_disabled() {
        let period = Duration::days(5);
        assert!(failing_too_long(Some(now() - Duration::days(5)), now(), period));
        assert!(!failing_too_long(Some(now() - Duration::days(4)), now(), period));
        assert!(!failing_too_long(None, now(), period));
    }
}
