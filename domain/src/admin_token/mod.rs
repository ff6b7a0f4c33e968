//! The AdminToken aggregate. One stream per (tenant, name) so that "names are unique per tenant"
//! is enforced by the event store's optimistic concurrency instead of a racy read-model check.

#[cfg(test)]
mod tests;

use crate::key_format::SecretHash;
use crate::name::Name;
use crate::permission::{Actor, Permission};
use crate::scope::{Scope, ScopeGrant};
use crate::tenant::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use uuid::Uuid;

/// Namespace for the deterministic stream ids of admin tokens.
const TOKEN_NAMESPACE: Uuid = Uuid::from_u128(0x6b65_796c_6564_6765_722d_746f_6b65_6e73);

/// The aggregate id of the stream that owns `name` in `tenant`. Case-insensitive, like the
/// uniqueness users expect ("CI" and "ci" are the same token name).
pub fn token_stream_id(tenant: &TenantId, name: &Name) -> Uuid {
    let key = format!("{}\u{0}{}", tenant, name.as_str().to_lowercase());
    Uuid::new_v5(&TOKEN_NAMESPACE, key.as_bytes())
}

/// A public, non-secret digest of a token used to find its row; the secret is checked against
/// the salted hash.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenFingerprint(String);

impl TokenFingerprint {
    pub fn from_hex(hex: String) -> Self {
        TokenFingerprint(hex)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenFingerprint({})", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AdminTokenEvent {
    AdminTokenIssued {
        token_id: Uuid,
        tenant: TenantId,
        name: Name,
        permissions: BTreeSet<Permission>,
        scopes: ScopeGrant,
        expires_at: Option<DateTime<Utc>>,
        fingerprint: TokenFingerprint,
        secret_hash: SecretHash,
        at: DateTime<Utc>,
    },
    AdminTokenDeleted {
        token_id: Uuid,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AdminTokenEvent {
    fn event_type(&self) -> String {
        match self {
            AdminTokenEvent::AdminTokenIssued { .. } => "AdminTokenIssued",
            AdminTokenEvent::AdminTokenDeleted { .. } => "AdminTokenDeleted",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AdminTokenCommand {
    Issue(Box<IssueAdminToken>),
    /// `by` must hold every permission the token holds: a tenant admin cannot take away a
    /// superuser's token, as they could not have made it.
    Delete {
        token_id: Uuid,
        by: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct IssueAdminToken {
    pub token_id: Uuid,
    pub tenant: TenantId,
    pub name: Name,
    pub permissions: BTreeSet<Permission>,
    /// Key scopes this token may grant; `None` means all the issuer holds.
    pub scopes: Option<BTreeSet<Scope>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub fingerprint: TokenFingerprint,
    pub secret_hash: SecretHash,
    pub issuer: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminTokenError {
    #[error("a token named {name:?} already exists")]
    TokenAlreadyExists { name: String },
    #[error("token not found")]
    TokenNotFound,
    #[error("a token needs at least one permission")]
    NoPermissions,
    #[error("you cannot grant permission {permission}: you do not hold it")]
    PermissionNotGrantable { permission: Permission },
    #[error("you cannot grant scope {scope}: you do not hold it")]
    ScopeNotGrantable { scope: Scope },
    #[error("you cannot delete a token holding {permission}: you do not hold it")]
    PermissionNotHeld { permission: Permission },
    #[error("you cannot create tokens for tenant {tenant}")]
    TenantNotAllowed { tenant: TenantId },
    #[error("expires_at must be in the future")]
    ExpiryInPast,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveToken {
    pub token_id: Uuid,
    pub tenant: TenantId,
    pub name: Name,
    #[serde(default)]
    pub permissions: BTreeSet<Permission>,
}

/// The current holder of one (tenant, name), if any. A deleted name may be reused by a new token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdminToken {
    live: Option<LiveToken>,
}

impl AdminToken {
    fn issue(&self, cmd: IssueAdminToken) -> Result<AdminTokenEvent, AdminTokenError> {
        if let Some(live) = &self.live {
            return Err(AdminTokenError::TokenAlreadyExists {
                name: live.name.to_string(),
            });
        }
        if !cmd.issuer.may_access(&cmd.tenant) {
            return Err(AdminTokenError::TenantNotAllowed { tenant: cmd.tenant });
        }
        if cmd.permissions.is_empty() {
            return Err(AdminTokenError::NoPermissions);
        }
        if let Some(permission) = cmd.permissions.iter().find(|p| !cmd.issuer.has(**p)) {
            return Err(AdminTokenError::PermissionNotGrantable {
                permission: *permission,
            });
        }
        let scopes = if cmd.permissions.contains(&Permission::Superuser) {
            ScopeGrant::All
        } else {
            match cmd.scopes {
                None => cmd.issuer.scopes.clone(),
                Some(wanted) => {
                    if let Some(scope) = cmd.issuer.scopes.first_missing(&wanted) {
                        return Err(AdminTokenError::ScopeNotGrantable { scope: scope.clone() });
                    }
                    ScopeGrant::Only(wanted)
                }
            }
        };
        if cmd.expires_at.is_some_and(|e| e <= cmd.at) {
            return Err(AdminTokenError::ExpiryInPast);
        }
        Ok(AdminTokenEvent::AdminTokenIssued {
            token_id: cmd.token_id,
            tenant: cmd.tenant,
            name: cmd.name,
            permissions: cmd.permissions,
            scopes,
            expires_at: cmd.expires_at,
            fingerprint: cmd.fingerprint,
            secret_hash: cmd.secret_hash,
            at: cmd.at,
        })
    }
}

impl Aggregate for AdminToken {
    const TYPE: &'static str = "AdminToken";
    type Command = AdminTokenCommand;
    type Event = AdminTokenEvent;
    type Error = AdminTokenError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AdminTokenCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AdminTokenError> {
        let event = match command {
            AdminTokenCommand::Issue(cmd) => self.issue(*cmd)?,
            AdminTokenCommand::Delete { token_id, by, at } => match &self.live {
                Some(live) if live.token_id == token_id => {
                    if let Some(permission) = live.permissions.iter().find(|p| !by.has(**p)) {
                        return Err(AdminTokenError::PermissionNotHeld {
                            permission: *permission,
                        });
                    }
                    AdminTokenEvent::AdminTokenDeleted { token_id, at }
                }
                _ => return Err(AdminTokenError::TokenNotFound),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: AdminTokenEvent) {
        match event {
            AdminTokenEvent::AdminTokenIssued {
                token_id,
                tenant,
                name,
                permissions,
                ..
            } => {
                self.live = Some(LiveToken {
                    token_id,
                    tenant,
                    name,
                    permissions,
                });
            }
            AdminTokenEvent::AdminTokenDeleted { .. } => self.live = None,
        }
    }
}
