//! What a usage export asks for: a window of whole UTC hours (the rollups' finest kept grain),
//! how rows are grouped, and the file format.

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use std::str::FromStr;

/// The longest window one export covers.
pub const MAX_EXPORT_DAYS: i64 = 400;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("group_by must be key, endpoint or day, not {0:?}")]
    UnknownGrouping(String),
    #[error("format must be csv or json, not {0:?}")]
    UnknownFormat(String),
    #[error("{0} must be a date (2026-12-01) or an RFC 3339 time at a whole UTC hour, not {1:?}")]
    BadTime(&'static str, String),
    #[error("{0} must be at a whole UTC hour: usage is summed per hour")]
    NotWholeHour(&'static str),
    #[error("from must be before to")]
    Empty,
    #[error("an export covers at most {MAX_EXPORT_DAYS} days")]
    TooLong,
}

/// One row per key, per endpoint, or per UTC day (each per tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Key,
    Endpoint,
    Day,
}

impl FromStr for Grouping {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "key" => Ok(Grouping::Key),
            "endpoint" => Ok(Grouping::Endpoint),
            "day" => Ok(Grouping::Day),
            _ => Err(ExportError::UnknownGrouping(s.to_owned())),
        }
    }
}

impl Grouping {
    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Key => "key",
            Grouping::Endpoint => "endpoint",
            Grouping::Day => "day",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl FromStr for ExportFormat {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "json" => Ok(ExportFormat::Json),
            _ => Err(ExportError::UnknownFormat(s.to_owned())),
        }
    }
}

/// From `from` (inclusive) to `to` (exclusive), whole UTC hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

fn time(name: &'static str, text: &str) -> Result<DateTime<Utc>, ExportError> {
    let at = match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(day) => day.and_time(chrono::NaiveTime::MIN).and_utc(),
        Err(_) => DateTime::parse_from_rfc3339(text)
            .map_err(|_| ExportError::BadTime(name, text.to_owned()))?
            .with_timezone(&Utc),
    };
    if at.minute() != 0 || at.second() != 0 || at.nanosecond() != 0 {
        return Err(ExportError::NotWholeHour(name));
    }
    Ok(at)
}

impl ExportWindow {
    pub fn parse(from: &str, to: &str) -> Result<Self, ExportError> {
        let (from, to) = (time("from", from)?, time("to", to)?);
        if from >= to {
            return Err(ExportError::Empty);
        }
        if to - from > TimeDelta::days(MAX_EXPORT_DAYS) {
            return Err(ExportError::TooLong);
        }
        Ok(ExportWindow { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_whole_hours_in_order_and_bounded() {
        let w = ExportWindow::parse("2026-11-01", "2026-12-01T00:00:00Z").unwrap();
        assert_eq!((w.to - w.from).num_days(), 30);
        let offset = ExportWindow::parse("2026-11-01T10:00:00+02:00", "2026-11-01T12:00:00Z").unwrap();
        assert_eq!(offset.from.hour(), 8, "read as UTC");
        assert_eq!(
            ExportWindow::parse("2026-11-01T10:30:00Z", "2026-11-02"),
            Err(ExportError::NotWholeHour("from"))
        );
        assert_eq!(ExportWindow::parse("2026-11-02", "2026-11-01"), Err(ExportError::Empty));
        assert_eq!(
            ExportWindow::parse("2025-01-01", "2026-12-01"),
            Err(ExportError::TooLong)
        );
        assert!(matches!(
            ExportWindow::parse("yesterday", "2026-11-01"),
            Err(ExportError::BadTime("from", _))
        ));
        assert_eq!("day".parse(), Ok(Grouping::Day));
        assert!("week".parse::<Grouping>().is_err());
        assert_eq!("json".parse(), Ok(ExportFormat::Json));
    }
}
