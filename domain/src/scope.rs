//! Key scopes: the catalogue of RBAC permissions an API key can carry.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The default catalogue: the platform's RBAC permissions that may be granted to API keys
/// (product document 01, "Scopes").
pub const CATALOGUE: &[&str] = &[
    "FILES_READ",
    "FILES_WRITE",
    "FILES_DELETE",
    "FILES_UPLOAD",
    "FILES_DOWNLOAD",
    "FILES_EMBED",
    "FILES_FOLDER_MANAGE",
    "CHAT_READ",
    "CHAT_WRITE",
    "CHAT_DELETE",
    "AGENTS_READ",
    "AGENTS_WRITE",
    "AGENTS_EXECUTE",
    "AGENTS_MANAGE",
    "KNOWLEDGE_READ",
    "KNOWLEDGE_WRITE",
    "REPORTS_READ",
    "REPORTS_WRITE",
    "ORGANIZATIONS_READ",
    "ORGANIZATIONS_WRITE",
    "INTEGRATIONS_READ",
    "INTEGRATIONS_WRITE",
    "ANALYTICS_READ",
    "ANALYTICS_WRITE",
    "SCHEDULER_READ",
    "SCHEDULER_WRITE",
    "SCHEDULER_EXECUTE",
    "SCHEDULER_MANAGE",
    "BOTS_CREATE",
    "BOTS_MANAGE",
    "COLLECTIONS_ASSIGN",
    "COLLECTIONS_MANAGE",
];

/// Admin-level permissions that must never end up on an API key: a leaked key would otherwise
/// be able to manage other keys.
pub const ADMIN_LEVEL: &[&str] = &[
    "ADMIN_ACCESS",
    "SUPERUSER_ACCESS",
    "API_MANAGEMENT_READ",
    "API_MANAGEMENT_WRITE",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope {0} is admin-level and can never be granted to an API key")]
    AdminLevel(String),
    #[error("scope {0} is not in the scope catalogue")]
    Unknown(String),
}

/// One scope from the catalogue, such as `FILES_READ`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

impl Scope {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every scope of the catalogue.
    pub fn all() -> BTreeSet<Scope> {
        CATALOGUE.iter().map(|s| Scope((*s).to_owned())).collect()
    }
}

impl TryFrom<String> for Scope {
    type Error = ScopeError;
    fn try_from(raw: String) -> Result<Self, ScopeError> {
        if ADMIN_LEVEL.contains(&raw.as_str()) {
            return Err(ScopeError::AdminLevel(raw));
        }
        if CATALOGUE.contains(&raw.as_str()) {
            Ok(Scope(raw))
        } else {
            Err(ScopeError::Unknown(raw))
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which key scopes an acting admin holds, and so may grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScopeGrant {
    /// Superusers hold the whole catalogue, including scopes added to it later.
    All,
    Only(BTreeSet<Scope>),
}

impl ScopeGrant {
    pub fn holds(&self, scope: &Scope) -> bool {
        match self {
            ScopeGrant::All => true,
            ScopeGrant::Only(held) => held.contains(scope),
        }
    }

    /// The first requested scope that is not held, if any.
    pub fn first_missing<'a>(&self, wanted: &'a BTreeSet<Scope>) -> Option<&'a Scope> {
        wanted.iter().find(|s| !self.holds(s))
    }

    pub fn scopes(&self) -> BTreeSet<Scope> {
        match self {
            ScopeGrant::All => Scope::all(),
            ScopeGrant::Only(held) => held.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_scopes_parse_admin_scopes_and_unknown_ones_do_not() {
        assert!("FILES_READ".parse::<Scope>().is_ok());
        assert_eq!(
            "API_MANAGEMENT_WRITE".parse::<Scope>(),
            Err(ScopeError::AdminLevel("API_MANAGEMENT_WRITE".into()))
        );
        assert_eq!(
            "files_read".parse::<Scope>(),
            Err(ScopeError::Unknown("files_read".into()))
        );
    }

    #[test]
    fn a_limited_grant_holds_only_its_scopes() {
        let grant = ScopeGrant::Only(["FILES_READ".parse().unwrap()].into());
        let wanted: BTreeSet<Scope> = ["FILES_READ".parse().unwrap(), "CHAT_READ".parse().unwrap()].into();
        assert_eq!(grant.first_missing(&wanted).map(Scope::as_str), Some("CHAT_READ"));
        assert_eq!(ScopeGrant::All.first_missing(&wanted), None);
    }
}
