//! How a recorded request ended, in the words analytics group and filter by.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The edge's decision for a request (DESIGN.md §7), as usage records keep it: `VALID`, or the
/// refusal's error code (`invalid_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Valid,
    InvalidKey,
    KeyRevoked,
    KeyExpired,
    IpForbidden,
    InsufficientScope,
    RateLimited,
    EndpointNotFound,
    UpstreamUnreachable,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an edge outcome: {0:?}")]
pub struct UnknownOutcome(pub String);

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Valid,
        Outcome::InvalidKey,
        Outcome::KeyRevoked,
        Outcome::KeyExpired,
        Outcome::IpForbidden,
        Outcome::InsufficientScope,
        Outcome::RateLimited,
        Outcome::EndpointNotFound,
        Outcome::UpstreamUnreachable,
    ];

    /// As a usage record stores it.
    pub fn recorded(self) -> &'static str {
        match self {
            Outcome::Valid => "VALID",
            Outcome::InvalidKey => "invalid_key",
            Outcome::KeyRevoked => "key_revoked",
            Outcome::KeyExpired => "key_expired",
            Outcome::IpForbidden => "ip_forbidden",
            Outcome::InsufficientScope => "insufficient_scope",
            Outcome::RateLimited => "rate_limited",
            Outcome::EndpointNotFound => "endpoint_not_found",
            Outcome::UpstreamUnreachable => "upstream_unreachable",
        }
    }

    /// As analytics show it and filters name it (`INVALID_KEY`), the verify API's verdict.
    pub fn verdict(self) -> &'static str {
        match self {
            Outcome::Valid => "VALID",
            Outcome::InvalidKey => "INVALID_KEY",
            Outcome::KeyRevoked => "KEY_REVOKED",
            Outcome::KeyExpired => "KEY_EXPIRED",
            Outcome::IpForbidden => "IP_FORBIDDEN",
            Outcome::InsufficientScope => "INSUFFICIENT_SCOPE",
            Outcome::RateLimited => "RATE_LIMITED",
            Outcome::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            Outcome::UpstreamUnreachable => "UPSTREAM_UNREACHABLE",
        }
    }

    /// The outcome a usage record stored.
    pub fn from_recorded(code: &str) -> Result<Self, UnknownOutcome> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.recorded() == code)
            .ok_or_else(|| UnknownOutcome(code.to_owned()))
    }
}

impl FromStr for Outcome {
    type Err = UnknownOutcome;
    /// The verdict as a filter names it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.verdict() == s)
            .ok_or_else(|| UnknownOutcome(s.to_owned()))
    }
}

/// A status code's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StatusClass {
    #[serde(rename = "1xx")]
    Informational,
    #[serde(rename = "2xx")]
    Success,
    #[serde(rename = "3xx")]
    Redirection,
    #[serde(rename = "4xx")]
    ClientError,
    #[serde(rename = "5xx")]
    ServerError,
}

impl StatusClass {
    /// `None` for a number outside 100–599.
    pub fn of(status: u16) -> Option<Self> {
        Some(match status {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => return None,
        })
    }

    /// The first and last status code of the class.
    pub fn statuses(self) -> (u16, u16) {
        let first = match self {
            StatusClass::Informational => 100,
            StatusClass::Success => 200,
            StatusClass::Redirection => 300,
            StatusClass::ClientError => 400,
            StatusClass::ServerError => 500,
        };
        (first, first + 99)
    }

    /// Whether a request that ended so counts as an error in analytics: 4xx and 5xx.
    pub fn is_error(self) -> bool {
        matches!(self, StatusClass::ClientError | StatusClass::ServerError)
    }

    /// The statuses of the error classes, which are adjacent: for stores that count errors.
    pub const ERRORS: (u16, u16) = (400, 599);
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status_class must be 1xx, 2xx, 3xx, 4xx or 5xx, not {0:?}")]
pub struct UnknownStatusClass(pub String);

impl FromStr for StatusClass {
    type Err = UnknownStatusClass;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "1xx" => StatusClass::Informational,
            "2xx" => StatusClass::Success,
            "3xx" => StatusClass::Redirection,
            "4xx" => StatusClass::ClientError,
            "5xx" => StatusClass::ServerError,
            _ => return Err(UnknownStatusClass(s.to_owned())),
        })
    }
}

/// How an endpoint's error rate is shown (seed 01): green under 1 %, amber from 1 to 5 %, red
/// above 5 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorRateClass {
    Green,
    Amber,
    Red,
}

impl ErrorRateClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorRateClass::Green => "green",
            ErrorRateClass::Amber => "amber",
            ErrorRateClass::Red => "red",
        }
    }

    /// For `errors` of `requests`, compared exactly (no floating point); no requests is green.
    pub fn of(errors: u64, requests: u64) -> Self {
        let (errors, requests) = (errors as u128, requests as u128);
        if errors * 100 < requests || requests == 0 {
            ErrorRateClass::Green
        } else if errors * 20 <= requests {
            ErrorRateClass::Amber
        } else {
            ErrorRateClass::Red
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_reads_back_from_its_record_and_its_verdict() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_recorded(o.recorded()), Ok(o));
            assert_eq!(o.verdict().parse(), Ok(o));
            assert_eq!(o.verdict(), o.recorded().to_ascii_uppercase());
        }
        assert!(Outcome::from_recorded("INVALID_KEY").is_err(), "records keep the code");
        assert!("invalid_key".parse::<Outcome>().is_err(), "filters name the verdict");
    }

    #[test]
    fn statuses_fall_in_their_class_and_only_4xx_and_5xx_are_errors() {
        assert_eq!(StatusClass::of(204), Some(StatusClass::Success));
        assert_eq!(StatusClass::of(429), Some(StatusClass::ClientError));
        assert_eq!(StatusClass::of(600), None);
        assert!(StatusClass::ClientError.is_error() && StatusClass::ServerError.is_error());
        assert!(!StatusClass::Redirection.is_error());
        for status in 100..=599 {
            let (low, high) = StatusClass::ERRORS;
            assert_eq!(
                StatusClass::of(status).is_some_and(StatusClass::is_error),
                (low..=high).contains(&status),
                "{status}"
            );
        }
    }

    #[test]
    fn error_rates_are_green_below_1_percent_amber_to_5_and_red_above() {
        assert_eq!(ErrorRateClass::of(0, 0), ErrorRateClass::Green);
        assert_eq!(ErrorRateClass::of(9, 1000), ErrorRateClass::Green);
        assert_eq!(ErrorRateClass::of(10, 1000), ErrorRateClass::Amber);
        assert_eq!(ErrorRateClass::of(50, 1000), ErrorRateClass::Amber);
        assert_eq!(ErrorRateClass::of(5001, 100_000), ErrorRateClass::Red);
        assert_eq!(ErrorRateClass::of(6, 100), ErrorRateClass::Red);
        for class in [ErrorRateClass::Green, ErrorRateClass::Amber, ErrorRateClass::Red] {
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
        }
    }
}
