//! The API key's wire format: `ak_<env>_` + lookup id + secret + checksum, all base62.
//!
//! The fixed lengths and the CRC32 checksum let secret scanners recognise a key and let the edge
//! reject a mistyped or made-up key without touching the database.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const LOOKUP_ID_LEN: usize = 12;
/// 24 base62 characters carry 142 bits of entropy, above the 128 DESIGN.md asks for.
pub const SECRET_LEN: usize = 24;
/// 62^6 > 2^32, so any CRC32 fits.
pub const CHECKSUM_LEN: usize = 6;
const BODY_LEN: usize = LOOKUP_ID_LEN + SECRET_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub fn prefix(self) -> &'static str {
        match self {
            Environment::Live => "ak_live_",
            Environment::Test => "ak_test_",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment must be live or test, got {0:?}")]
pub struct UnknownEnvironment(pub String);

impl std::str::FromStr for Environment {
    type Err = UnknownEnvironment;
    fn from_str(s: &str) -> Result<Self, UnknownEnvironment> {
        match s {
            "live" => Ok(Environment::Live),
            "test" => Ok(Environment::Test),
            other => Err(UnknownEnvironment(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("key must start with ak_live_ or ak_test_")]
    Prefix,
    #[error("key has the wrong length")]
    Length,
    #[error("key contains characters outside base62")]
    Characters,
    #[error("key checksum does not match")]
    Checksum,
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The public part of a key that finds its row in the lookup table. Safe to show and log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LookupId(String);

impl LookupId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LookupId {
    type Error = KeyFormatError;
    fn try_from(raw: String) -> Result<Self, KeyFormatError> {
        if raw.len() != LOOKUP_ID_LEN {
            return Err(KeyFormatError::Length);
        }
        if !is_base62(&raw) {
            return Err(KeyFormatError::Characters);
        }
        Ok(LookupId(raw))
    }
}

impl From<LookupId> for String {
    fn from(l: LookupId) -> String {
        l.0
    }
}

impl fmt::Display for LookupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CRC32 in base62, as the key's last characters; always ASCII.
fn checksum(prefix_and_payload: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(prefix_and_payload.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A presented key whose shape and checksum are right, borrowed from the request: the edge checks
/// one on every request, and [`PlaintextKey::parse`] copies it three times over.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub environment: Environment,
    /// The lookup id's characters (base62, [`LOOKUP_ID_LEN`] of them).
    pub lookup_id: &'a str,
    /// The whole key, to check against its verifier or hash; never to log.
    pub full: &'a str,
}

impl<'a> PresentedKey<'a> {
    /// Checks a presented key's shape and checksum; says nothing about whether it exists.
    pub fn check(raw: &'a str) -> Result<Self, KeyFormatError> {
        let (environment, body) = if let Some(body) = raw.strip_prefix(Environment::Live.prefix()) {
            (Environment::Live, body)
        } else if let Some(body) = raw.strip_prefix(Environment::Test.prefix()) {
            (Environment::Test, body)
        } else {
            return Err(KeyFormatError::Prefix);
        };
        if body.len() != BODY_LEN {
            return Err(KeyFormatError::Length);
        }
        if !is_base62(body) {
            return Err(KeyFormatError::Characters);
        }
        let (without_sum, sum) = raw.split_at(raw.len() - CHECKSUM_LEN);
        if checksum(without_sum) != sum.as_bytes() {
            return Err(KeyFormatError::Checksum);
        }
        Ok(PresentedKey {
            environment,
            lookup_id: &body[..LOOKUP_ID_LEN],
            full: raw,
        })
    }
}

impl fmt::Debug for PresentedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedKey({}{}…)", self.environment.prefix(), self.lookup_id)
    }
}

/// A complete plaintext key. It exists only between generation and the response that shows it
/// once, and while the edge checks a presented key; `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PlaintextKey {
    environment: Environment,
    lookup_id: LookupId,
    full: String,
}

impl fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaintextKey({}{}…)", self.environment.prefix(), self.lookup_id)
    }
}

impl PlaintextKey {
    /// Assembles a key from freshly generated random parts (the caller owns the randomness).
    pub fn compose(environment: Environment, lookup_id: LookupId, secret: &str) -> Result<Self, KeyFormatError> {
        if secret.len() != SECRET_LEN {
            return Err(KeyFormatError::Length);
        }
        if !is_base62(secret) {
            return Err(KeyFormatError::Characters);
        }
        let mut full = String::with_capacity(8 + BODY_LEN);
        full.push_str(environment.prefix());
        full.push_str(lookup_id.as_str());
        full.push_str(secret);
        let sum = checksum(&full);
        full.extend(sum.iter().map(|&b| char::from(b)));
        Ok(PlaintextKey {
            environment,
            lookup_id,
            full,
        })
    }

    /// Checks a presented key's shape and checksum; says nothing about whether it exists.
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        let presented = PresentedKey::check(raw)?;
        Ok(PlaintextKey {
            environment: presented.environment,
            lookup_id: LookupId(presented.lookup_id.to_owned()),
            full: raw.to_owned(),
        })
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    pub fn lookup_id(&self) -> &LookupId {
        &self.lookup_id
    }

    /// The whole key. Call only to show it once or to hash it.
    pub fn expose(&self) -> &str {
        &self.full
    }

    /// What lists show so that a person can recognise a key: prefix and lookup id.
    pub fn display_prefix(&self) -> String {
        format!("{}{}", self.environment.prefix(), self.lookup_id)
    }
}

/// A salted, slow hash of a secret, in PHC string form (algorithm, iterations and salt included)
/// so the iteration count can be raised later without breaking old keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn from_phc(phc: String) -> Self {
        SecretHash(phc)
    }
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> LookupId {
        LookupId::try_from("AbCdEf012345".to_owned()).unwrap()
    }

    #[test]
    fn a_composed_key_parses_back() {
        let key = PlaintextKey::compose(Environment::Live, lookup(), "s3cr3ts3cr3ts3cr3ts3cr3t").unwrap();
        assert!(key.expose().starts_with("ak_live_AbCdEf012345s3cr3t"));
        assert_eq!(key.expose().len(), 8 + 12 + 24 + 6);
        let parsed = PlaintextKey::parse(key.expose()).unwrap();
        assert_eq!(parsed, key);
        assert_eq!(parsed.display_prefix(), "ak_live_AbCdEf012345");
        assert!(!format!("{parsed:?}").contains("s3cr3t"));
        let presented = PresentedKey::check(key.expose()).unwrap();
        assert_eq!(
            (presented.environment, presented.lookup_id, presented.full),
            (Environment::Live, "AbCdEf012345", key.expose())
        );
        assert!(!format!("{presented:?}").contains("s3cr3t"));
    }

    #[test]
    fn malformed_keys_are_rejected_before_any_lookup() {
        let key = PlaintextKey::compose(Environment::Test, lookup(), "s3cr3ts3cr3ts3cr3ts3cr3t").unwrap();
        let raw = key.expose();
        assert_eq!(PlaintextKey::parse("sk_live_whatever"), Err(KeyFormatError::Prefix));
        assert_eq!(PlaintextKey::parse(&raw[..raw.len() - 1]), Err(KeyFormatError::Length));
        let mut typo = raw.to_owned();
        typo.replace_range(20..21, if &raw[20..21] == "x" { "y" } else { "x" });
        assert_eq!(PlaintextKey::parse(&typo), Err(KeyFormatError::Checksum));
        let mut bad = raw.to_owned();
        bad.replace_range(20..21, "-");
        assert_eq!(PlaintextKey::parse(&bad), Err(KeyFormatError::Characters));
        assert_eq!(PresentedKey::check(&typo), Err(KeyFormatError::Checksum));
    }
}
