//! Usage alert rules: a figure over a window, above a threshold, fires a `usage.alert` once per
//! breach. The rule is judged on figures the analytics rollups give; the evaluator keeps
//! whether each rule is in breach, so that a breach that lasts fires once and one that clears
//! and comes back fires again.

mod aggregate;

pub use aggregate::{AlertAggregateError, AlertCommand, AlertEvent, LiveRule, NewAlertRule, UsageAlert};

use serde::{Deserialize, Serialize};

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertMetric {
    /// Requests refused by a rate limit.
    RateLimitHits,
    /// 4xx and 5xx answers as a share of requests, in percent.
    ErrorRate,
    Requests,
    /// Hours until a key expires (a rule on a key only): fires when fewer remain.
    KeyExpiry,
}

/// What a rule is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum AlertSubject {
    Key(String),
    Endpoint(String),
    /// Every request of the tenant.
    Tenant,
}

/// A rule as an admin sets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub subject: AlertSubject,
    pub metric: AlertMetric,
    pub threshold: f64,
    /// Minutes the figure is summed over (1 to 1440); unused for key expiry.
    pub window_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertRuleError {
    #[error("the window is 1 to 1440 minutes")]
    Window,
    #[error("the threshold must be a number of at least 0 (an error rate at most 100)")]
    Threshold,
    #[error("a key-expiry rule is about a key")]
    ExpiryNeedsKey,
}

impl AlertRule {
    pub fn validated(self) -> Result<AlertRule, AlertRuleError> {
        if !(1..=1_440).contains(&self.window_minutes) {
            return Err(AlertRuleError::Window);
        }
        let most = if self.metric == AlertMetric::ErrorRate {
            100.0
        } else {
            f64::MAX
        };
        if !(self.threshold.is_finite() && (0.0..=most).contains(&self.threshold)) {
            return Err(AlertRuleError::Threshold);
        }
        if self.metric == AlertMetric::KeyExpiry && !matches!(self.subject, AlertSubject::Key(_)) {
            return Err(AlertRuleError::ExpiryNeedsKey);
        }
        Ok(self)
    }

    /// The figure the rule compares with its threshold.
    pub fn value(&self, figures: &WindowFigures) -> Option<f64> {
        match self.metric {
            AlertMetric::RateLimitHits => Some(figures.rate_limited as f64),
            AlertMetric::Requests => Some(figures.requests as f64),
            AlertMetric::ErrorRate => {
                (figures.requests > 0).then(|| figures.errors as f64 * 100.0 / figures.requests as f64)
            }
            AlertMetric::KeyExpiry => figures.hours_to_expiry,
        }
    }

    /// Whether `figures` (over the rule's window) breach it.
    pub fn breached(&self, figures: &WindowFigures) -> bool {
        match self.metric {
            AlertMetric::RateLimitHits => figures.rate_limited as f64 > self.threshold,
            AlertMetric::Requests => figures.requests as f64 > self.threshold,
            // No requests, no error rate.
            AlertMetric::ErrorRate => {
                figures.requests > 0 && figures.errors as f64 * 100.0 / figures.requests as f64 > self.threshold
            }
            AlertMetric::KeyExpiry => figures.hours_to_expiry.is_some_and(|h| h < self.threshold),
        }
    }
}

/// A rule's subject's figures over its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowFigures {
    pub requests: u64,
    pub errors: u64,
    pub rate_limited: u64,
    /// For a key that expires: hours left.
    pub hours_to_expiry: Option<f64>,
}

/// Whether a rule was in breach when last judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    #[default]
    Clear,
    Breached,
}

impl AlertState {
    /// The state after a judgement, and whether it fires an alert: only on the way into a
    /// breach.
    pub fn judged(self, breached: bool) -> (AlertState, bool) {
        match (self, breached) {
            (AlertState::Clear, true) => (AlertState::Breached, true),
            (_, true) => (AlertState::Breached, false),
            (_, false) => (AlertState::Clear, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(metric: AlertMetric, threshold: f64) -> AlertRule {
        AlertRule {
            subject: AlertSubject::Key("k-1".into()),
            metric,
            threshold,
            window_minutes: 5,
        }
    }

    fn figures(requests: u64, errors: u64, rate_limited: u64) -> WindowFigures {
        WindowFigures {
            requests,
            errors,
            rate_limited,
            hours_to_expiry: None,
        }
    }

    #[test]
    fn each_metric_breaches_only_above_its_threshold() {
        assert!(rule(AlertMetric::RateLimitHits, 10.0).breached(&figures(100, 0, 11)));
        assert!(!rule(AlertMetric::RateLimitHits, 10.0).breached(&figures(100, 0, 10)));
        assert!(rule(AlertMetric::Requests, 99.0).breached(&figures(100, 0, 0)));
        assert!(rule(AlertMetric::ErrorRate, 5.0).breached(&figures(100, 6, 0)));
        assert!(!rule(AlertMetric::ErrorRate, 5.0).breached(&figures(100, 5, 0)));
        assert!(
            !rule(AlertMetric::ErrorRate, 0.0).breached(&figures(0, 0, 0)),
            "no traffic, no rate"
        );
        let expiring = WindowFigures {
            hours_to_expiry: Some(20.0),
            ..Default::default()
        };
        assert!(rule(AlertMetric::KeyExpiry, 24.0).breached(&expiring));
        assert!(!rule(AlertMetric::KeyExpiry, 24.0).breached(&WindowFigures::default()));
    }

    #[test]
    fn a_lasting_breach_fires_once_and_a_new_one_after_it_clears_fires_again() {
        let judgements = [false, true, true, true, false, true];
        let mut state = AlertState::default();
        let fired: Vec<bool> = judgements
            .iter()
            .map(|&breached| {
                let (next, fire) = state.judged(breached);
                state = next;
                fire
            })
            .collect();
        assert_eq!(fired, [false, true, false, false, false, true]);
    }

    #[test]
    fn a_rule_is_refused_with_a_window_threshold_or_subject_it_cannot_have() {
        assert_eq!(
            AlertRule {
                window_minutes: 0,
                ..rule(AlertMetric::Requests, 1.0)
            }
            .validated(),
            Err(AlertRuleError::Window)
        );
        assert_eq!(
            rule(AlertMetric::ErrorRate, 101.0).validated(),
            Err(AlertRuleError::Threshold)
        );
        assert_eq!(
            rule(AlertMetric::Requests, f64::NAN).validated(),
            Err(AlertRuleError::Threshold)
        );
        assert_eq!(
            rule(AlertMetric::Requests, -1.0).validated(),
            Err(AlertRuleError::Threshold)
        );
        assert_eq!(
            AlertRule {
                subject: AlertSubject::Tenant,
                ..rule(AlertMetric::KeyExpiry, 24.0)
            }
            .validated(),
            Err(AlertRuleError::ExpiryNeedsKey)
        );
        assert!(rule(AlertMetric::ErrorRate, 5.0).validated().is_ok());
    }
}
