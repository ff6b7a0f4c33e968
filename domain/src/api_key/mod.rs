//! The ApiKey aggregate: issue, change, rotate, revoke and expire one key.

mod commands;
mod errors;
mod events;
#[cfg(test)]
mod tests;

pub use commands::{ApiKeyCommand, ChangeKey, IssueKey, RevokeKey, RotateKey};
pub use errors::ApiKeyError;
pub use events::{ApiKeyEvent, ExpiryWarning};

use crate::ip_rules::IpRules;
use crate::key_format::{Environment, LookupId, SecretHash};
use crate::name::Name;
use crate::rate_limits::RateLimits;
use crate::scope::Scope;
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use uuid::Uuid;

pub const MAX_GRACE_DAYS: i64 = 7;
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status must be active, expired or revoked, got {0:?}")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for KeyStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        match s {
            "active" => Ok(KeyStatus::Active),
            "expired" => Ok(KeyStatus::Expired),
            "revoked" => Ok(KeyStatus::Revoked),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// The old secret of a rotated key, still accepted until `valid_until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetiredSecret {
    pub lookup_id: LookupId,
    pub secret_hash: SecretHash,
    pub valid_until: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedKey {
    pub id: Uuid,
    pub tenant: TenantId,
    pub name: Name,
    pub environment: Environment,
    pub lookup_id: LookupId,
    pub secret_hash: SecretHash,
    pub previous_secret: Option<RetiredSecret>,
    pub scopes: BTreeSet<Scope>,
    pub rate_limits: RateLimits,
    pub ip_rules: IpRules,
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked and expired are recorded by events; see [`IssuedKey::status_at`] for the status at
    /// a given instant, which also covers an expiry the scheduler has not yet recorded.
    pub recorded_status: KeyStatus,
    pub warnings_sent: BTreeSet<ExpiryWarning>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl IssuedKey {
    pub fn status_at(&self, now: DateTime<Utc>) -> KeyStatus {
        match self.recorded_status {
            KeyStatus::Active if self.expires_at.is_some_and(|e| e <= now) => KeyStatus::Expired,
            status => status,
        }
    }

    pub fn display_prefix(&self) -> String {
        format!("{}{}", self.environment.prefix(), self.lookup_id)
    }
}

/// One API key. `None` until issued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    key: Option<IssuedKey>,
}

impl ApiKey {
    pub fn issued(&self) -> Option<&IssuedKey> {
        self.key.as_ref()
    }

    /// Replays events up to and including `as_of` (by the time each event records).
    pub fn replay_until<'a>(events: impl IntoIterator<Item = &'a ApiKeyEvent>, as_of: DateTime<Utc>) -> Self {
        let mut key = ApiKey::default();
        for event in events.into_iter().take_while(|e| e.at() <= as_of) {
            key.apply(event.clone());
        }
        key
    }

    fn active(&self, now: DateTime<Utc>) -> Result<&IssuedKey, ApiKeyError> {
        let key = self.key.as_ref().ok_or(ApiKeyError::KeyNotFound)?;
        match key.status_at(now) {
            KeyStatus::Active => Ok(key),
            status => Err(ApiKeyError::KeyNotActive { status }),
        }
    }

    fn issue(&self, cmd: IssueKey) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        if self.key.is_some() {
            return Err(ApiKeyError::KeyAlreadyIssued);
        }
        if let Some(scope) = cmd.granter.first_missing(&cmd.scopes) {
            return Err(ApiKeyError::ScopeNotGrantable { scope: scope.clone() });
        }
        if cmd.expires_at.is_some_and(|e| e <= cmd.at) {
            return Err(ApiKeyError::ExpiryInPast);
        }
        Ok(vec![ApiKeyEvent::KeyIssued {
            key_id: cmd.key_id,
            tenant: cmd.tenant,
            name: cmd.name,
            environment: cmd.environment,
            lookup_id: cmd.lookup_id,
            secret_hash: cmd.secret_hash,
            scopes: cmd.scopes,
            rate_limits: cmd.rate_limits,
            ip_rules: cmd.ip_rules,
            expires_at: cmd.expires_at,
            at: cmd.at,
        }])
    }

    fn change(&self, cmd: ChangeKey) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        let key = self.active(cmd.at)?;
        let at = cmd.at;
        let mut events = Vec::new();
        if let Some(name) = cmd.name.filter(|n| n != &key.name) {
            events.push(ApiKeyEvent::KeyRenamed { name, at });
        }
        if let Some(scopes) = cmd.scopes.filter(|s| s != &key.scopes) {
            // Keeping a scope someone else granted is fine; adding one you lack is not.
            let added: BTreeSet<Scope> = scopes.difference(&key.scopes).cloned().collect();
            if let Some(scope) = cmd.granter.first_missing(&added) {
                return Err(ApiKeyError::ScopeNotGrantable { scope: scope.clone() });
            }
            events.push(ApiKeyEvent::KeyScopesChanged { scopes, at });
        }
        if let Some(rate_limits) = cmd.rate_limits.filter(|r| r != &key.rate_limits) {
            events.push(ApiKeyEvent::KeyRateLimitsChanged { rate_limits, at });
        }
        let ip_rules = match (cmd.ip_allow, cmd.ip_block) {
            (None, None) => None,
            (allow, block) => Some(IpRules::new(
                allow.unwrap_or_else(|| key.ip_rules.allow().to_vec()),
                block.unwrap_or_else(|| key.ip_rules.block().to_vec()),
            )?),
        };
        if let Some(ip_rules) = ip_rules.filter(|r| r != &key.ip_rules) {
            events.push(ApiKeyEvent::KeyIpRulesChanged { ip_rules, at });
        }
        Ok(events)
    }

    fn rotate(&self, cmd: RotateKey) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        let key = self.active(cmd.at)?;
        if cmd.grace < chrono::Duration::zero() || cmd.grace > chrono::Duration::days(MAX_GRACE_DAYS) {
            return Err(ApiKeyError::GraceOutOfRange);
        }
        // The old secret never outlives the key itself.
        let mut valid_until = cmd.at + cmd.grace;
        if let Some(expires_at) = key.expires_at {
            valid_until = valid_until.min(expires_at);
        }
        Ok(vec![ApiKeyEvent::KeyRotated {
            lookup_id: cmd.lookup_id,
            secret_hash: cmd.secret_hash,
            previous_lookup_id: key.lookup_id.clone(),
            previous_valid_until: valid_until,
            at: cmd.at,
        }])
    }

    fn revoke(&self, cmd: RevokeKey) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        let key = self.key.as_ref().ok_or(ApiKeyError::KeyNotFound)?;
        if key.recorded_status == KeyStatus::Revoked {
            return Err(ApiKeyError::KeyAlreadyRevoked);
        }
        if cmd
            .reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            return Err(ApiKeyError::ReasonTooLong);
        }
        Ok(vec![ApiKeyEvent::KeyRevoked {
            reason: cmd.reason,
            at: cmd.at,
        }])
    }

    fn check_expiry(&self, at: DateTime<Utc>) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        let key = self.key.as_ref().ok_or(ApiKeyError::KeyNotFound)?;
        let Some(expires_at) = key.expires_at else {
            return Ok(vec![]);
        };
        if key.recorded_status != KeyStatus::Active {
            return Ok(vec![]);
        }
        if expires_at <= at {
            return Ok(vec![ApiKeyEvent::KeyExpired { at }]);
        }
        // Only the most urgent warning that is due: after downtime a key 12 hours from expiry
        // gets the one-day warning, not a stale seven-day one as well.
        let due = [ExpiryWarning::OneDay, ExpiryWarning::SevenDays]
            .into_iter()
            .find(|w| expires_at - w.lead() <= at);
        match due {
            Some(warning) if !key.warnings_sent.iter().any(|sent| *sent <= warning) => {
                Ok(vec![ApiKeyEvent::KeyExpiryWarned {
                    warning,
                    expires_at,
                    at,
                }])
            }
            _ => Ok(vec![]),
        }
    }
}

impl Aggregate for ApiKey {
    const TYPE: &'static str = "ApiKey";
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;
    type Error = ApiKeyError;
    type Services = ();

    async fn handle(&mut self, command: ApiKeyCommand, _: &(), sink: &EventSink<Self>) -> Result<(), ApiKeyError> {
        let events = match command {
            ApiKeyCommand::Issue(cmd) => self.issue(cmd)?,
            ApiKeyCommand::Change(cmd) => self.change(cmd)?,
            ApiKeyCommand::Rotate(cmd) => self.rotate(cmd)?,
            ApiKeyCommand::Revoke(cmd) => self.revoke(cmd)?,
            ApiKeyCommand::CheckExpiry { at } => self.check_expiry(at)?,
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: ApiKeyEvent) {
        use ApiKeyEvent::*;
        if let KeyIssued {
            key_id,
            tenant,
            name,
            environment,
            lookup_id,
            secret_hash,
            scopes,
            rate_limits,
            ip_rules,
            expires_at,
            at,
        } = event
        {
            self.key = Some(IssuedKey {
                id: key_id,
                tenant,
                name,
                environment,
                lookup_id,
                secret_hash,
                previous_secret: None,
                scopes,
                rate_limits,
                ip_rules,
                expires_at,
                recorded_status: KeyStatus::Active,
                warnings_sent: BTreeSet::new(),
                created_at: at,
                updated_at: at,
                revoked_at: None,
            });
            return;
        }
        let Some(key) = self.key.as_mut() else { return };
        key.updated_at = event.at();
        match event {
            KeyIssued { .. } => {}
            KeyRenamed { name, .. } => key.name = name,
            KeyScopesChanged { scopes, .. } => key.scopes = scopes,
            KeyRateLimitsChanged { rate_limits, .. } => key.rate_limits = rate_limits,
            KeyIpRulesChanged { ip_rules, .. } => key.ip_rules = ip_rules,
            KeyRotated {
                lookup_id,
                secret_hash,
                previous_lookup_id,
                previous_valid_until,
                ..
            } => {
                let old_hash = std::mem::replace(&mut key.secret_hash, secret_hash);
                key.lookup_id = lookup_id;
                key.previous_secret = Some(RetiredSecret {
                    lookup_id: previous_lookup_id,
                    secret_hash: old_hash,
                    valid_until: previous_valid_until,
                });
            }
            KeyRevoked { at, .. } => {
                key.recorded_status = KeyStatus::Revoked;
                key.revoked_at = Some(at);
            }
            KeyExpiryWarned { warning, .. } => {
                key.warnings_sent.insert(warning);
            }
            KeyExpired { .. } => key.recorded_status = KeyStatus::Expired,
        }
    }
}
