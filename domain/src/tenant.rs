//! Tenants: every key, token and event belongs to exactly one.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error("tenant id must be 1 to 64 characters")]
    Length,
    #[error("tenant id may contain only lowercase letters, digits, '-' and '_' and must start with a letter or digit")]
    Characters,
}

/// A tenant slug such as `default` or `acme-corp`. Lowercase so that two spellings can never name
/// two tenants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn default_tenant() -> Self {
        TenantId("default".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = TenantIdError;
    fn try_from(raw: String) -> Result<Self, TenantIdError> {
        if raw.is_empty() || raw.len() > 64 {
            return Err(TenantIdError::Length);
        }
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        let first_ok = raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok || !raw.chars().all(ok_char) {
            return Err(TenantIdError::Characters);
        }
        Ok(TenantId(raw))
    }
}

impl std::str::FromStr for TenantId {
    type Err = TenantIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_parse_and_other_spellings_are_rejected() {
        assert!("acme-corp_2".parse::<TenantId>().is_ok());
        assert_eq!("".parse::<TenantId>(), Err(TenantIdError::Length));
        assert_eq!("Acme".parse::<TenantId>(), Err(TenantIdError::Characters));
        assert_eq!("-x".parse::<TenantId>(), Err(TenantIdError::Characters));
        assert_eq!("a b".parse::<TenantId>(), Err(TenantIdError::Characters));
        assert_eq!("a".repeat(65).parse::<TenantId>(), Err(TenantIdError::Length));
    }
}
