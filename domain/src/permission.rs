//! Admin permissions and the acting admin.

use crate::scope::ScopeGrant;
use crate::tenant::TenantId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use uuid::Uuid;

/// What an admin token may do. Ordered from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permission {
    /// Read keys, tokens' metadata, audit and history of its tenant.
    ApiManagementRead,
    /// Issue, change, rotate and revoke keys of its tenant.
    ApiManagementWrite,
    /// Everything above plus admin tokens of its own tenant.
    TenantAdmin,
    /// Everything, on every tenant.
    Superuser,
}

impl Permission {
    pub const ALL: [Permission; 4] = [
        Permission::ApiManagementRead,
        Permission::ApiManagementWrite,
        Permission::TenantAdmin,
        Permission::Superuser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ApiManagementRead => "API_MANAGEMENT_READ",
            Permission::ApiManagementWrite => "API_MANAGEMENT_WRITE",
            Permission::TenantAdmin => "TENANT_ADMIN",
            Permission::Superuser => "SUPERUSER",
        }
    }

    /// The permissions this one includes (itself among them).
    fn implied(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            ApiManagementRead => &[ApiManagementRead],
            ApiManagementWrite => &[ApiManagementRead, ApiManagementWrite],
            TenantAdmin => &[ApiManagementRead, ApiManagementWrite, TenantAdmin],
            Superuser => &[ApiManagementRead, ApiManagementWrite, TenantAdmin, Superuser],
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0}")]
pub struct UnknownPermission(pub String);

impl std::str::FromStr for Permission {
    type Err = UnknownPermission;
    fn from_str(s: &str) -> Result<Self, UnknownPermission> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// The admin on whose behalf a command runs: who, for which tenant, with what rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The admin token's id, or `None` for the system itself (scheduler, bootstrap).
    pub token_id: Option<Uuid>,
    pub tenant: TenantId,
    pub permissions: BTreeSet<Permission>,
    pub scopes: ScopeGrant,
}

impl Actor {
    /// Keyledger itself, for scheduled work such as expiry: holds every right.
    pub fn system() -> Self {
        Actor {
            token_id: None,
            tenant: TenantId::default_tenant(),
            permissions: [Permission::Superuser].into(),
            scopes: ScopeGrant::All,
        }
    }

    pub fn has(&self, wanted: Permission) -> bool {
        self.permissions.iter().any(|p| p.implied().contains(&wanted))
    }

    pub fn is_superuser(&self) -> bool {
        self.has(Permission::Superuser)
    }

    /// May this actor see and change data of `tenant`?
    pub fn may_access(&self, tenant: &TenantId) -> bool {
        self.is_superuser() || &self.tenant == tenant
    }

    /// [`Self::may_access`] for a tenant as stored text. A tenant that does not parse is
    /// nobody's: it never falls back to the actor's own.
    pub fn may_access_named(&self, tenant: &str) -> bool {
        tenant.parse::<TenantId>().is_ok_and(|t| self.may_access(&t))
    }

    /// The label written into event metadata and shown in the audit log.
    pub fn label(&self) -> String {
        match self.token_id {
            Some(id) => format!("admin_token:{id}"),
            None => "system".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(p: Permission) -> Actor {
        Actor {
            token_id: Some(Uuid::nil()),
            tenant: "acme".parse().unwrap(),
            permissions: [p].into(),
            scopes: ScopeGrant::All,
        }
    }

    #[test]
    fn stronger_permissions_include_weaker_ones() {
        assert!(actor(Permission::ApiManagementWrite).has(Permission::ApiManagementRead));
        assert!(!actor(Permission::ApiManagementRead).has(Permission::ApiManagementWrite));
        assert!(actor(Permission::TenantAdmin).has(Permission::ApiManagementWrite));
        assert!(!actor(Permission::TenantAdmin).has(Permission::Superuser));
    }

    #[test]
    fn only_superusers_reach_other_tenants() {
        let other: TenantId = "other".parse().unwrap();
        assert!(!actor(Permission::TenantAdmin).may_access(&other));
        assert!(actor(Permission::Superuser).may_access(&other));
        assert!(actor(Permission::ApiManagementRead).may_access(&"acme".parse().unwrap()));
    }
}
