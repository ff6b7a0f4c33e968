//! What the edge keeps per presentable secret and per endpoint, derived from the folded states.
//!
//! A node holds an entry for every active secret, a million of them and more (README: "A million
//! keys"), so an entry holds only what is its own, inline: its lookup id and key id as fixed
//! ASCII, its status, times and verifier. What many keys share (tenant, scopes, limits, IP rules
//! and the header values made of them) is one [`KeyProfile`] behind an `Arc`. The PBKDF2 hash is
//! not kept at all: the rare request that needs it reads it from the key's stream.

use super::profile::KeyProfile;
use chrono::{DateTime, Utc};
use keyledger_commands::secrets::VerifierDigest;
use keyledger_domain::api_key::IssuedKey;
use keyledger_domain::endpoint::RegisteredEndpoint;
use keyledger_domain::key_format::LOOKUP_ID_LEN;
use keyledger_domain::route::HttpMethod;
use keyledger_domain::KeyStatus;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// A lookup id (always [`LOOKUP_ID_LEN`] base62 characters) held inline: the key of the edge's
/// map, built from the presented key's text without an allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LookupKey([u8; LOOKUP_ID_LEN]);

impl LookupKey {
    /// `None` unless `text` has exactly [`LOOKUP_ID_LEN`] bytes (parsed lookup ids always do).
    pub fn new(text: &str) -> Option<Self> {
        text.as_bytes().try_into().ok().map(LookupKey)
    }

    pub fn as_str(&self) -> &str {
        // Copied whole from a `&str` of exactly this length, so always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key id as the hyphenated text usage records and the `X-Keyledger-Key-Id` header carry,
/// inline (36 bytes, against 16 for the `Uuid` and 24 plus a heap buffer for a `String`), so that
/// each request borrows it instead of formatting it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyIdText([u8; uuid::fmt::Hyphenated::LENGTH]);

impl KeyIdText {
    pub fn of(id: Uuid) -> Self {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        id.hyphenated().encode_lower(&mut text);
        KeyIdText(text)
    }

    pub fn as_str(&self) -> &str {
        // Written by `encode_lower`: ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn uuid(&self) -> Uuid {
        Uuid::try_parse_ascii(&self.0).unwrap_or_default()
    }
}

/// As its text, as the verify API answers it.
impl serde::Serialize for KeyIdText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Debug for KeyIdText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for KeyIdText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant's name, one allocation shared by every entry and profile of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantName(Arc<str>);

impl TenantName {
    pub(super) fn new(name: Arc<str>) -> Self {
        TenantName(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for TenantName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::ops::Deref for TenantName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// One presented secret of a key (a rotated key has two until the old one's grace ends).
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub lookup_id: LookupKey,
    pub key_id: KeyIdText,
    /// The profile's tenant, here as well because every usage record reads it.
    pub tenant: TenantName,
    pub status: KeyStatus,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set on the retired secret of a rotated key.
    pub valid_until: Option<DateTime<Utc>>,
    /// HMAC(pepper, key) for this node's pepper, as far as this node knows.
    pub verifier: Verifier,
    /// Scopes, limits, IP rules and identity headers, shared with every key on the same settings.
    pub profile: Arc<KeyProfile>,
}

/// What this node knows of a secret's peppered verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verifier {
    /// Not looked for yet: `key_verifiers` may hold one (another node may have stored it).
    Unknown,
    /// `key_verifiers` holds none. A presented key goes straight to the bounded PBKDF2 path, so a
    /// flood of well-formed keys with real lookup ids and wrong secrets costs no query each.
    NotStored,
    Known(VerifierDigest),
}

impl Verifier {
    /// What `key_verifiers` holds for a secret. A stored verifier that is not 64 hex digits is
    /// treated as missing, with a warning: PBKDF2 decides once and stores a good one over it.
    pub fn stored(lookup_id: &str, text: Option<&str>) -> Self {
        match text.map(|t| (t, VerifierDigest::from_hex(t))) {
            None => Verifier::NotStored,
            Some((_, Some(digest))) => Verifier::Known(digest),
            Some((_, None)) => {
                tracing::warn!(
                    lookup_id,
                    "the stored verifier of this key is not 64 hex digits; PBKDF2 checks the key once and replaces it"
                );
                Verifier::NotStored
            }
        }
    }

    pub fn known(&self) -> Option<&VerifierDigest> {
        match self {
            Verifier::Known(v) => Some(v),
            Verifier::Unknown | Verifier::NotStored => None,
        }
    }
}

/// What every secret of one key has in common, however its state was read.
pub(super) struct KeyFacts {
    pub(super) id: Uuid,
    pub(super) status: KeyStatus,
    pub(super) expires_at: Option<DateTime<Utc>>,
    pub(super) profile: Arc<KeyProfile>,
}

impl KeyFacts {
    pub(super) fn of(key: &IssuedKey, profile: Arc<KeyProfile>) -> Self {
        KeyFacts {
            id: key.id,
            status: key.recorded_status,
            expires_at: key.expires_at,
            profile,
        }
    }

    /// The entry of one of the key's secrets.
    pub(super) fn entry(
        &self,
        lookup_id: LookupKey,
        valid_until: Option<DateTime<Utc>>,
        verifier: Verifier,
    ) -> KeyEntry {
        KeyEntry {
            lookup_id,
            key_id: KeyIdText::of(self.id),
            tenant: self.profile.tenant.clone(),
            status: self.status,
            expires_at: self.expires_at,
            valid_until,
            verifier,
            profile: self.profile.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EndpointEntry {
    pub endpoint_id: String,
    pub path: String,
    pub methods: BTreeSet<HttpMethod>,
    pub plugin: String,
    pub required_scopes: BTreeSet<String>,
    pub upstream_url: String,
    pub deprecated_at: Option<DateTime<Utc>>,
    pub sunset_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub disabled_tenants: HashSet<String>,
}

impl EndpointEntry {
    pub fn enabled_for(&self, tenant: &str) -> bool {
        self.active && !self.disabled_tenants.contains(tenant)
    }

    pub(super) fn of(e: &RegisteredEndpoint) -> Self {
        EndpointEntry {
            endpoint_id: e.id.to_string(),
            path: e.spec.path.to_string(),
            methods: e.spec.methods.clone(),
            plugin: e.spec.plugin.to_string(),
            required_scopes: e.spec.required_scopes.iter().map(|s| s.to_string()).collect(),
            upstream_url: e.spec.upstream_url.as_str().to_owned(),
            deprecated_at: e.deprecation.as_ref().map(|d| d.since),
            sunset_at: e.deprecation.as_ref().and_then(|d| d.sunset),
            active: e.active,
            disabled_tenants: e.disabled_tenants.iter().map(|t| t.to_string()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_held_inline_read_back_as_their_text() {
        let lookup = LookupKey::new("AbCdEf012345").unwrap();
        assert_eq!(lookup.as_str(), "AbCdEf012345");
        assert!(LookupKey::new("short").is_none());
        assert!(LookupKey::new("AbCdEf0123456").is_none());
        let id = Uuid::new_v4();
        let text = KeyIdText::of(id);
        assert_eq!(text.as_str(), id.to_string());
        assert_eq!(text.uuid(), id);
    }
}
