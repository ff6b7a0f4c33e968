use crate::ip_rules::IpRules;
use crate::key_format::{Environment, LookupId, SecretHash};
use crate::name::Name;
use crate::rate_limits::RateLimits;
use crate::scope::Scope;
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Which advance warning of expiry was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryWarning {
    OneDay,
    SevenDays,
}

impl ExpiryWarning {
    pub fn lead(self) -> chrono::Duration {
        match self {
            ExpiryWarning::OneDay => chrono::Duration::days(1),
            ExpiryWarning::SevenDays => chrono::Duration::days(7),
        }
    }
}

/// Events of the ApiKey aggregate. The variant names are the persisted `event_type`s: never
/// rename one; add a version and an upcaster instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApiKeyEvent {
    KeyIssued {
        key_id: Uuid,
        tenant: TenantId,
        name: Name,
        environment: Environment,
        lookup_id: LookupId,
        secret_hash: SecretHash,
        scopes: BTreeSet<Scope>,
        rate_limits: RateLimits,
        ip_rules: IpRules,
        expires_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    KeyRenamed {
        name: Name,
        at: DateTime<Utc>,
    },
    KeyScopesChanged {
        scopes: BTreeSet<Scope>,
        at: DateTime<Utc>,
    },
    KeyRateLimitsChanged {
        rate_limits: RateLimits,
        at: DateTime<Utc>,
    },
    KeyIpRulesChanged {
        ip_rules: IpRules,
        at: DateTime<Utc>,
    },
    /// A new secret replaces the old one; the old one keeps working until `previous_valid_until`.
    KeyRotated {
        lookup_id: LookupId,
        secret_hash: SecretHash,
        previous_lookup_id: LookupId,
        previous_valid_until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    KeyRevoked {
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    KeyExpiryWarned {
        warning: ExpiryWarning,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    KeyExpired {
        at: DateTime<Utc>,
    },
}

impl ApiKeyEvent {
    pub fn at(&self) -> DateTime<Utc> {
        use ApiKeyEvent::*;
        match self {
            KeyIssued { at, .. }
            | KeyRenamed { at, .. }
            | KeyScopesChanged { at, .. }
            | KeyRateLimitsChanged { at, .. }
            | KeyIpRulesChanged { at, .. }
            | KeyRotated { at, .. }
            | KeyRevoked { at, .. }
            | KeyExpiryWarned { at, .. }
            | KeyExpired { at } => *at,
        }
    }
}

impl DomainEvent for ApiKeyEvent {
    fn event_type(&self) -> String {
        use ApiKeyEvent::*;
        match self {
            KeyIssued { .. } => "KeyIssued",
            KeyRenamed { .. } => "KeyRenamed",
            KeyScopesChanged { .. } => "KeyScopesChanged",
            KeyRateLimitsChanged { .. } => "KeyRateLimitsChanged",
            KeyIpRulesChanged { .. } => "KeyIpRulesChanged",
            KeyRotated { .. } => "KeyRotated",
            KeyRevoked { .. } => "KeyRevoked",
            KeyExpiryWarned { .. } => "KeyExpiryWarned",
            KeyExpired { .. } => "KeyExpired",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
