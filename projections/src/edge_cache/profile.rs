//! What many keys share: tenant, environment, scopes, rate limits, IP rules and the identity
//! headers made of them, as one [`KeyProfile`] per distinct set of settings. A million keys
//! issued on a handful of plans hold a handful of profiles; a key on settings of its own has a
//! profile of its own (README: "A million keys" measures both).

use super::entries::TenantName;
use http::HeaderValue;
use keyledger_domain::api_key::IssuedKey;
use keyledger_domain::ip_rules::IpRules;
use keyledger_domain::key_format::Environment;
use keyledger_domain::rate_limits::RateLimits;
use keyledger_domain::scope::CATALOGUE;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Arc;

/// A key's scopes as positions in the scope catalogue, which every key scope is in (the
/// domain's `Scope` cannot be made otherwise): eight bytes for any set, and a check is a mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u64);

const _: () = assert!(CATALOGUE.len() <= 64, "Scopes holds a catalogue of at most 64 scopes");

fn position(scope: &str) -> Option<usize> {
    CATALOGUE.iter().position(|c| *c == scope)
}

impl Scopes {
    pub fn of<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Self {
        Scopes(scopes.into_iter().filter_map(position).fold(0, |set, p| set | 1 << p))
    }

    /// Whether `scope` is held; a name outside the catalogue never is.
    pub fn contains(&self, scope: &str) -> bool {
        position(scope).is_some_and(|p| self.0 & 1 << p != 0)
    }

    /// The names, sorted as the key's scope set sorts them.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = (0..CATALOGUE.len())
            .filter(|p| self.0 & 1 << p != 0)
            .map(|p| CATALOGUE[p])
            .collect();
        names.sort_unstable();
        names
    }
}

/// As the sorted list of names, as the verify API answers it.
impl serde::Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

/// `X-Keyledger-Tenant`, `-Scopes` (comma-separated) and `-Environment`, made when a profile is
/// made rather than on every answer. (`X-Keyledger-Key-Id` is each key's own: made per answer.)
#[derive(Debug, Clone)]
pub struct ProfileHeaders {
    pub tenant: HeaderValue,
    pub scopes: HeaderValue,
    pub environment: HeaderValue,
}

#[derive(Debug)]
pub struct KeyProfile {
    pub tenant: TenantName,
    pub environment: Environment,
    pub scopes: Scopes,
    pub rate_limits: RateLimits,
    pub ip_rules: IpRules,
    pub headers: ProfileHeaders,
}

/// A key's settings, borrowed: what two keys must share to share a profile.
pub(super) struct Settings<'a> {
    pub(super) tenant: &'a str,
    pub(super) environment: Environment,
    pub(super) scopes: Scopes,
    pub(super) rate_limits: &'a RateLimits,
    pub(super) ip_rules: &'a IpRules,
}

impl<'a> Settings<'a> {
    pub(super) fn of(key: &'a IssuedKey) -> Self {
        Settings {
            tenant: key.tenant.as_str(),
            environment: key.environment,
            scopes: Scopes::of(key.scopes.iter().map(|s| s.as_str())),
            rate_limits: &key.rate_limits,
            ip_rules: &key.ip_rules,
        }
    }

    fn hash(&self, hasher: &RandomState) -> u64 {
        let mut h = hasher.build_hasher();
        self.tenant.hash(&mut h);
        self.environment.hash(&mut h);
        self.scopes.hash(&mut h);
        let l = self.rate_limits;
        (l.per_second(), l.per_minute(), l.per_hour(), l.per_day(), l.burst()).hash(&mut h);
        (self.ip_rules.allow(), self.ip_rules.block()).hash(&mut h);
        h.finish()
    }

    fn held_by(&self, p: &KeyProfile) -> bool {
        p.tenant.as_str() == self.tenant
            && p.environment == self.environment
            && p.scopes == self.scopes
            && p.rate_limits == *self.rate_limits
            && p.ip_rules == *self.ip_rules
    }
}

/// Ids, tenants, scopes and environments are parsed ASCII tokens; the fallback is never hit.
fn header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The profiles in use, by their settings' hash, and the tenants' names with their header.
#[derive(Default)]
pub(super) struct Profiles {
    hasher: RandomState,
    by_settings: HashMap<u64, Arc<KeyProfile>>,
    tenants: HashMap<Arc<str>, HeaderValue>,
    /// Profiles held after the last sweep of unused ones.
    swept_at: usize,
}

impl Profiles {
    /// The profile of these settings, shared with every key on the same ones.
    pub(super) fn of(&mut self, settings: &Settings<'_>) -> Arc<KeyProfile> {
        let hash = settings.hash(&self.hasher);
        match self.by_settings.get(&hash) {
            Some(p) if settings.held_by(p) => return p.clone(),
            // Two settings with one 64-bit hash: never seen, and then only not shared.
            Some(_) => return Arc::new(self.make(settings)),
            None => {}
        }
        self.sweep();
        let profile = Arc::new(self.make(settings));
        self.by_settings.insert(hash, profile.clone());
        profile
    }

    fn make(&mut self, s: &Settings<'_>) -> KeyProfile {
        let (tenant, tenant_header) = match self.tenants.get_key_value(s.tenant) {
            Some((name, header)) => (name.clone(), header.clone()),
            None => {
                let (name, value): (Arc<str>, HeaderValue) = (s.tenant.into(), header(s.tenant));
                self.tenants.insert(name.clone(), value.clone());
                (name, value)
            }
        };
        KeyProfile {
            tenant: TenantName::new(tenant),
            environment: s.environment,
            scopes: s.scopes,
            rate_limits: *s.rate_limits,
            ip_rules: s.ip_rules.clone(),
            headers: ProfileHeaders {
                tenant: tenant_header,
                scopes: header(&s.scopes.names().join(",")),
                // Static text: no buffer of its own.
                environment: HeaderValue::from_static(s.environment.as_str()),
            },
        }
    }

    /// Forgets profiles no entry holds any more (a key whose settings changed), once their
    /// number has doubled since the last sweep: a sweep reads every profile.
    fn sweep(&mut self) {
        if self.by_settings.len() < self.swept_at * 2 + 64 {
            return;
        }
        self.by_settings.retain(|_, p| Arc::strong_count(p) > 1);
        self.tenants.retain(|name, _| Arc::strong_count(name) > 1);
        self.swept_at = self.by_settings.len();
    }

    pub(super) fn len(&self) -> usize {
        self.by_settings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_held_by_their_catalogue_positions_and_named_in_order() {
        let scopes = Scopes::of(["FILES_WRITE", "CHAT_READ", "FILES_READ"]);
        assert!(scopes.contains("FILES_READ") && scopes.contains("CHAT_READ"));
        assert!(!scopes.contains("FILES_DELETE"));
        assert!(!scopes.contains("NOT_A_SCOPE"));
        assert_eq!(scopes.names(), ["CHAT_READ", "FILES_READ", "FILES_WRITE"]);
        assert_eq!(Scopes::of(CATALOGUE.iter().copied()).names().len(), CATALOGUE.len());
    }
}
