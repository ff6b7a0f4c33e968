use crate::ip_rules::{CidrRule, IpRules};
use crate::key_format::{Environment, LookupId, SecretHash};
use crate::name::Name;
use crate::rate_limits::RateLimits;
use crate::scope::{Scope, ScopeGrant};
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Every command carries `at`, the instant the command bus read from its injected clock, so the
/// aggregate stays free of clocks.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    Issue(IssueKey),
    Change(ChangeKey),
    Rotate(RotateKey),
    Revoke(RevokeKey),
    /// Sent by the expiry scheduler: warn or expire when due, otherwise do nothing.
    CheckExpiry {
        at: DateTime<Utc>,
    },
}

/// The secret was generated and hashed by the application layer, which alone shows the plaintext.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueKey {
    pub key_id: Uuid,
    pub tenant: TenantId,
    pub name: Name,
    pub environment: Environment,
    pub lookup_id: LookupId,
    pub secret_hash: SecretHash,
    pub scopes: BTreeSet<Scope>,
    pub rate_limits: RateLimits,
    pub ip_rules: IpRules,
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes the acting admin holds and may therefore grant.
    pub granter: ScopeGrant,
    pub at: DateTime<Utc>,
}

/// Fields left `None` stay as they are. The allow and block lists are replaced one at a time: a
/// change may replace one and keep the other.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeKey {
    pub name: Option<Name>,
    pub scopes: Option<BTreeSet<Scope>>,
    pub rate_limits: Option<RateLimits>,
    pub ip_allow: Option<Vec<CidrRule>>,
    pub ip_block: Option<Vec<CidrRule>>,
    pub granter: ScopeGrant,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RotateKey {
    pub lookup_id: LookupId,
    pub secret_hash: SecretHash,
    /// How long the old secret keeps working.
    pub grace: chrono::Duration,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RevokeKey {
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}
