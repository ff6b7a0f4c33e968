//! Per-key rate limits: a request quota for each window, plus a burst allowance.

use serde::{Deserialize, Serialize};

/// Largest value accepted for any window. Far above any real quota, small enough that window
/// arithmetic in the edge can never overflow.
pub const MAX_LIMIT: u32 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limit {window} must be between 1 and {MAX_LIMIT}, got {value}")]
    OutOfRange { window: &'static str, value: u64 },
    #[error("burst must be between 1 and {MAX_LIMIT}, got {0}")]
    BurstOutOfRange(u64),
}

/// The limits as a client writes them. Missing windows take the product defaults (60 per minute,
/// 3600 per hour); `0` is refused rather than read as "unlimited" so that a typo cannot switch
/// protection off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsInput {
    pub per_second: Option<u64>,
    pub per_minute: Option<u64>,
    pub per_hour: Option<u64>,
    pub per_day: Option<u64>,
    pub burst: Option<u64>,
}

/// Validated limits: every configured window is in 1..=MAX_LIMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RateLimitsWire", into = "RateLimitsWire")]
pub struct RateLimits {
    per_second: Option<u32>,
    per_minute: Option<u32>,
    per_hour: Option<u32>,
    per_day: Option<u32>,
    burst: Option<u32>,
}

/// The stored shape; parsing it again re-checks the ranges.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct RateLimitsWire {
    per_second: Option<u32>,
    per_minute: Option<u32>,
    per_hour: Option<u32>,
    per_day: Option<u32>,
    burst: Option<u32>,
}

pub const DEFAULT_PER_MINUTE: u32 = 60;
pub const DEFAULT_PER_HOUR: u32 = 3600;

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_second: None,
            per_minute: Some(DEFAULT_PER_MINUTE),
            per_hour: Some(DEFAULT_PER_HOUR),
            per_day: None,
            burst: None,
        }
    }
}

fn window(name: &'static str, value: Option<u64>) -> Result<Option<u32>, RateLimitError> {
    match value {
        None => Ok(None),
        Some(v) if v >= 1 && v <= u64::from(MAX_LIMIT) => Ok(Some(v as u32)),
        Some(v) => Err(RateLimitError::OutOfRange { window: name, value: v }),
    }
}

impl TryFrom<RateLimitsInput> for RateLimits {
    type Error = RateLimitError;
    fn try_from(input: RateLimitsInput) -> Result<Self, RateLimitError> {
        let burst = match input.burst {
            None => None,
            Some(b) if b >= 1 && b <= u64::from(MAX_LIMIT) => Some(b as u32),
            Some(b) => return Err(RateLimitError::BurstOutOfRange(b)),
        };
        Ok(RateLimits {
            per_second: window("per_second", input.per_second)?,
            per_minute: window("per_minute", input.per_minute)?.or(Some(DEFAULT_PER_MINUTE)),
            per_hour: window("per_hour", input.per_hour)?.or(Some(DEFAULT_PER_HOUR)),
            per_day: window("per_day", input.per_day)?,
            burst,
        })
    }
}

impl TryFrom<RateLimitsWire> for RateLimits {
    type Error = RateLimitError;
    fn try_from(w: RateLimitsWire) -> Result<Self, RateLimitError> {
        let up = |v: Option<u32>| v.map(u64::from);
        let burst =
            window("burst", up(w.burst)).map_err(|_| RateLimitError::BurstOutOfRange(up(w.burst).unwrap_or(0)))?;
        Ok(RateLimits {
            per_second: window("per_second", up(w.per_second))?,
            per_minute: window("per_minute", up(w.per_minute))?,
            per_hour: window("per_hour", up(w.per_hour))?,
            per_day: window("per_day", up(w.per_day))?,
            burst,
        })
    }
}

impl From<RateLimits> for RateLimitsWire {
    fn from(r: RateLimits) -> Self {
        RateLimitsWire {
            per_second: r.per_second,
            per_minute: r.per_minute,
            per_hour: r.per_hour,
            per_day: r.per_day,
            burst: r.burst,
        }
    }
}

impl RateLimits {
    pub fn per_second(&self) -> Option<u32> {
        self.per_second
    }
    pub fn per_minute(&self) -> Option<u32> {
        self.per_minute
    }
    pub fn per_hour(&self) -> Option<u32> {
        self.per_hour
    }
    pub fn per_day(&self) -> Option<u32> {
        self.per_day
    }
    pub fn burst(&self) -> Option<u32> {
        self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_windows_take_the_product_defaults() {
        let limits = RateLimits::try_from(RateLimitsInput {
            per_second: Some(5),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(limits.per_second(), Some(5));
        assert_eq!(limits.per_minute(), Some(60));
        assert_eq!(limits.per_hour(), Some(3600));
        assert_eq!(limits.per_day(), None);
    }

    #[test]
    fn zero_and_huge_limits_are_refused() {
        let zero = RateLimitsInput {
            per_minute: Some(0),
            ..Default::default()
        };
        assert_eq!(
            RateLimits::try_from(zero),
            Err(RateLimitError::OutOfRange {
                window: "per_minute",
                value: 0
            })
        );
        let burst = RateLimitsInput {
            burst: Some(u64::MAX),
            ..Default::default()
        };
        assert_eq!(
            RateLimits::try_from(burst),
            Err(RateLimitError::BurstOutOfRange(u64::MAX))
        );
    }

    #[test]
    fn stored_limits_round_trip() {
        let limits = RateLimits::try_from(RateLimitsInput {
            per_day: Some(10),
            burst: Some(3),
            ..Default::default()
        })
        .unwrap();
        let json = serde_json::to_string(&limits).unwrap();
        assert_eq!(serde_json::from_str::<RateLimits>(&json).unwrap(), limits);
    }
}
