//! The UsageAlert aggregate: one alert rule of a tenant, and whether it is in breach. Judging
//! it fires `AlertFired` only on the way into a breach, so that a breach that lasts is told
//! once, whichever node judged it and however often.

use super::{AlertRule, AlertRuleError, AlertState, WindowFigures};
use crate::name::Name;
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A rule as it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAlertRule {
    pub rule_id: Uuid,
    pub tenant: TenantId,
    pub name: Name,
    pub rule: AlertRule,
    pub at: DateTime<Utc>,
}

/// Persisted `event_type`s are the variant names: never rename one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertEvent {
    AlertRuleCreated(NewAlertRule),
    AlertRuleDeleted {
        at: DateTime<Utc>,
    },
    /// The rule's figures went above its threshold: a `usage.alert`. Carries the rule as it was,
    /// so that the alert says what it is about on its own.
    AlertFired {
        name: Name,
        rule: AlertRule,
        figures: WindowFigures,
        /// The figure compared with the threshold.
        value: f64,
        at: DateTime<Utc>,
    },
    /// Back under the threshold: the next breach fires again.
    AlertCleared {
        at: DateTime<Utc>,
    },
}

impl AlertEvent {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            AlertEvent::AlertRuleCreated(new) => new.at,
            AlertEvent::AlertRuleDeleted { at }
            | AlertEvent::AlertFired { at, .. }
            | AlertEvent::AlertCleared { at } => *at,
        }
    }
}

impl DomainEvent for AlertEvent {
    fn event_type(&self) -> String {
        match self {
            AlertEvent::AlertRuleCreated(_) => "AlertRuleCreated",
            AlertEvent::AlertRuleDeleted { .. } => "AlertRuleDeleted",
            AlertEvent::AlertFired { .. } => "AlertFired",
            AlertEvent::AlertCleared { .. } => "AlertCleared",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlertCommand {
    Create(NewAlertRule),
    Delete {
        at: DateTime<Utc>,
    },
    /// The rule's subject's figures over its window, now: fires or clears when that changes
    /// whether it is in breach, and does nothing otherwise.
    Judge {
        figures: WindowFigures,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertAggregateError {
    #[error("the alert rule already exists")]
    AlreadyExists,
    #[error("alert rule not found")]
    NotFound,
    #[error(transparent)]
    Rule(#[from] AlertRuleError),
}

/// A live rule, as its stream says now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveRule {
    pub rule_id: Uuid,
    pub tenant: TenantId,
    pub name: Name,
    pub rule: AlertRule,
    pub state: AlertState,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageAlert {
    live: Option<LiveRule>,
    deleted: bool,
}

impl UsageAlert {
    pub fn rule(&self) -> Option<&LiveRule> {
        self.live.as_ref()
    }

    /// The events a command makes: none when a judgement changes nothing.
    fn decide(&self, command: AlertCommand) -> Result<Option<AlertEvent>, AlertAggregateError> {
        let live = || self.live.as_ref().ok_or(AlertAggregateError::NotFound);
        Ok(match command {
            AlertCommand::Create(_) if self.live.is_some() || self.deleted => {
                return Err(AlertAggregateError::AlreadyExists)
            }
            AlertCommand::Create(new) => Some(AlertEvent::AlertRuleCreated(NewAlertRule {
                rule: new.rule.validated()?,
                ..new
            })),
            AlertCommand::Delete { at } => {
                live()?;
                Some(AlertEvent::AlertRuleDeleted { at })
            }
            AlertCommand::Judge { figures, at } => {
                let live = live()?;
                let breached = live.rule.breached(&figures);
                match (live.state.judged(breached), live.state) {
                    ((_, true), _) => Some(AlertEvent::AlertFired {
                        name: live.name.clone(),
                        rule: live.rule.clone(),
                        value: live.rule.value(&figures).unwrap_or_default(),
                        figures,
                        at,
                    }),
                    ((AlertState::Clear, false), AlertState::Breached) => Some(AlertEvent::AlertCleared { at }),
                    _ => None,
                }
            }
        })
    }
}

impl Aggregate for UsageAlert {
    const TYPE: &'static str = "UsageAlert";
    type Command = AlertCommand;
    type Event = AlertEvent;
    type Error = AlertAggregateError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AlertCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AlertAggregateError> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: AlertEvent) {
        match event {
            AlertEvent::AlertRuleCreated(new) => {
                self.live = Some(LiveRule {
                    rule_id: new.rule_id,
                    tenant: new.tenant,
                    name: new.name,
                    rule: new.rule,
                    state: AlertState::Clear,
                })
            }
            AlertEvent::AlertRuleDeleted { .. } => {
                self.live = None;
                self.deleted = true;
            }
            AlertEvent::AlertFired { .. } => {
                if let Some(live) = self.live.as_mut() {
                    live.state = AlertState::Breached;
                }
            }
            AlertEvent::AlertCleared { .. } => {
                if let Some(live) = self.live.as_mut() {
                    live.state = AlertState::Clear;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AlertMetric, AlertSubject};
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    type AlertTest = TestFramework<UsageAlert>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
    }

    fn new_rule(threshold: f64) -> NewAlertRule {
        NewAlertRule {
            rule_id: Uuid::from_u128(5),
            tenant: "acme".parse().unwrap(),
            name: "too many 429s".parse().unwrap(),
            rule: AlertRule {
                subject: AlertSubject::Key("k-1".into()),
                metric: AlertMetric::RateLimitHits,
                threshold,
                window_minutes: 5,
            },
            at: at(),
        }
    }

    fn hits(rate_limited: u64) -> WindowFigures {
        WindowFigures {
            requests: 100,
            rate_limited,
            ..WindowFigures::default()
        }
    }

    fn fired(rate_limited: u64) -> AlertEvent {
        AlertEvent::AlertFired {
            name: new_rule(10.0).name,
            rule: new_rule(10.0).rule,
            figures: hits(rate_limited),
            value: rate_limited as f64,
            at: at(),
        }
    }

    #[test]
    fn a_rule_is_created_valid_and_refused_otherwise() {
        AlertTest::with(())
            .given_no_previous_events()
            .when(AlertCommand::Create(new_rule(10.0)))
            .then_expect_events(vec![AlertEvent::AlertRuleCreated(new_rule(10.0))]);
        AlertTest::with(())
            .given_no_previous_events()
            .when(AlertCommand::Create(new_rule(-1.0)))
            .then_expect_error(AlertAggregateError::Rule(AlertRuleError::Threshold));
    }

    #[test]
    fn a_breach_fires_once_while_it_lasts() {
        AlertTest::with(())
            .given(vec![AlertEvent::AlertRuleCreated(new_rule(10.0))])
            .when(AlertCommand::Judge {
                figures: hits(11),
                at: at(),
            })
            .then_expect_events(vec![fired(11)]);
        AlertTest::with(())
            .given(vec![AlertEvent::AlertRuleCreated(new_rule(10.0)), fired(11)])
            .when(AlertCommand::Judge {
                figures: hits(40),
                at: at(),
            })
            .then_expect_events(vec![]);
        AlertTest::with(())
            .given(vec![AlertEvent::AlertRuleCreated(new_rule(10.0))])
            .when(AlertCommand::Judge {
                figures: hits(10),
                at: at(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_cleared_breach_fires_again_when_it_comes_back() {
        AlertTest::with(())
            .given(vec![AlertEvent::AlertRuleCreated(new_rule(10.0)), fired(11)])
            .when(AlertCommand::Judge {
                figures: hits(2),
                at: at(),
            })
            .then_expect_events(vec![AlertEvent::AlertCleared { at: at() }]);
        AlertTest::with(())
            .given(vec![
                AlertEvent::AlertRuleCreated(new_rule(10.0)),
                fired(11),
                AlertEvent::AlertCleared { at: at() },
            ])
            .when(AlertCommand::Judge {
                figures: hits(12),
                at: at(),
            })
            .then_expect_events(vec![fired(12)]);
    }

    #[test]
    fn a_deleted_rule_is_neither_judged_nor_made_again() {
        let deleted = vec![
            AlertEvent::AlertRuleCreated(new_rule(10.0)),
            AlertEvent::AlertRuleDeleted { at: at() },
        ];
        AlertTest::with(())
            .given(deleted.clone())
            .when(AlertCommand::Judge {
                figures: hits(50),
                at: at(),
            })
            .then_expect_error(AlertAggregateError::NotFound);
        AlertTest::with(())
            .given(deleted)
            .when(AlertCommand::Create(new_rule(10.0)))
            .then_expect_error(AlertAggregateError::AlreadyExists);
    }
}
