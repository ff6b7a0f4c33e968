//! A key's state as `key_lookup` stores it (the domain's `ApiKey`, serialized), read for the
//! edge's snapshot: only what the edge keeps, borrowed from the row's text. The rest (name,
//! hashes, dates) is skipped unparsed, and each distinct text of a key's settings is parsed once:
//! a million states parsed whole took half of a restart's time.

use super::corrupt;
use super::entries::{KeyFacts, LookupKey};
use super::keys::Keys;
use super::profile::{KeyProfile, Scopes, Settings};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_domain::ip_rules::IpRules;
use keyledger_domain::key_format::Environment;
use keyledger_domain::rate_limits::RateLimits;
use keyledger_domain::scope::Scope;
use keyledger_domain::KeyStatus;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// `ApiKey`'s shape, as far as the edge reads it.
#[derive(Deserialize)]
struct StoredState<'a> {
    #[serde(borrow)]
    key: Option<StoredKey<'a>>,
}

/// `IssuedKey`'s fields the edge keeps; the others are skipped.
#[derive(Deserialize)]
struct StoredKey<'a> {
    id: Uuid,
    #[serde(borrow)]
    tenant: Cow<'a, str>,
    environment: Environment,
    #[serde(borrow)]
    lookup_id: Cow<'a, str>,
    #[serde(borrow)]
    previous_secret: Option<StoredSecret<'a>>,
    #[serde(borrow)]
    scopes: &'a RawValue,
    #[serde(borrow)]
    rate_limits: &'a RawValue,
    #[serde(borrow)]
    ip_rules: &'a RawValue,
    expires_at: Option<DateTime<Utc>>,
    recorded_status: KeyStatus,
}

/// `RetiredSecret`'s fields the edge keeps.
#[derive(Deserialize)]
struct StoredSecret<'a> {
    #[serde(borrow)]
    lookup_id: Cow<'a, str>,
    valid_until: DateTime<Utc>,
}

/// Reads stored states into a snapshot's keys, with the profile of each distinct settings text.
#[derive(Default)]
pub(super) struct Reader {
    /// foldhash, not SipHash: a settings text is hashed once per key, a few hundred bytes each.
    profiles: HashMap<String, Arc<KeyProfile>, foldhash::fast::RandomState>,
    /// The settings text of the state being read (reused: a known one costs no allocation).
    text: String,
    /// Issued keys read.
    keys: usize,
}

impl Reader {
    /// Adds the key of one stored state (none for a state not issued).
    pub(super) fn add(&mut self, keys: &mut Keys, state: &str) -> Result<(), ProjectionError> {
        let stored: StoredState<'_> =
            serde_json::from_str(state).map_err(|e| corrupt("a key's state in key_lookup", e))?;
        let Some(key) = stored.key else { return Ok(()) };
        self.keys += 1;
        let profile = self.profile(keys, &key)?;
        let facts = KeyFacts {
            id: key.id,
            status: key.recorded_status,
            expires_at: key.expires_at,
            profile,
        };
        let current = LookupKey::new(&key.lookup_id).map(|l| (l, None));
        let retired = key
            .previous_secret
            .as_ref()
            .and_then(|p| Some((LookupKey::new(&p.lookup_id)?, Some(p.valid_until))));
        keys.insert(&facts, current.into_iter().chain(retired), &[]);
        Ok(())
    }

    /// Issued keys read so far.
    pub(super) fn keys(&self) -> usize {
        self.keys
    }

    fn profile(&mut self, keys: &mut Keys, key: &StoredKey<'_>) -> Result<Arc<KeyProfile>, ProjectionError> {
        self.text.clear();
        for part in [
            &key.tenant,
            key.environment.as_str(),
            key.scopes.get(),
            key.rate_limits.get(),
            key.ip_rules.get(),
        ] {
            self.text.push_str(part);
            self.text.push('\u{1f}');
        }
        if let Some(profile) = self.profiles.get(self.text.as_str()) {
            return Ok(profile.clone());
        }
        let parse = |what: &str, e: serde_json::Error| corrupt(&format!("the {what} of key {}", key.id), e);
        let scopes: BTreeSet<Scope> = serde_json::from_str(key.scopes.get()).map_err(|e| parse("scopes", e))?;
        let rate_limits: RateLimits = serde_json::from_str(key.rate_limits.get()).map_err(|e| parse("limits", e))?;
        let ip_rules: IpRules = serde_json::from_str(key.ip_rules.get()).map_err(|e| parse("IP rules", e))?;
        let profile = keys.profiles.of(&Settings {
            tenant: &key.tenant,
            environment: key.environment,
            scopes: Scopes::of(scopes.iter().map(Scope::as_str)),
            rate_limits: &rate_limits,
            ip_rules: &ip_rules,
        });
        self.profiles.insert(self.text.clone(), profile.clone());
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::Aggregate;
    use keyledger_domain::api_key::ApiKeyEvent;
    use keyledger_domain::ip_rules::CidrRule;
    use keyledger_domain::key_format::{LookupId, SecretHash};
    use keyledger_domain::ApiKey;

    /// The edge reads stored states through its own view of their shape: it must read what the
    /// domain's state holds, a rotated key's two secrets included.
    #[test]
    fn a_stored_state_reads_as_the_entries_the_state_gives() {
        let at = Utc::now();
        let lookup = |s: &str| LookupId::try_from(s.to_owned()).unwrap();
        let mut state = ApiKey::default();
        state.apply(ApiKeyEvent::KeyIssued {
            key_id: Uuid::new_v4(),
            tenant: "acme".parse().unwrap(),
            name: "a \"quoted\" name".parse().unwrap(),
            environment: Environment::Test,
            lookup_id: lookup("AAAAAAAAAAAA"),
            secret_hash: SecretHash::from_phc("$pbkdf2-sha256$i=1$x$y".into()),
            scopes: ["FILES_READ".parse().unwrap(), "CHAT_READ".parse().unwrap()].into(),
            rate_limits: RateLimits::default(),
            ip_rules: IpRules::new(vec![CidrRule::try_from("10.0.0.0/8".to_owned()).unwrap()], vec![]).unwrap(),
            expires_at: Some(at + chrono::Duration::days(3)),
            at,
        });
        state.apply(ApiKeyEvent::KeyRotated {
            lookup_id: lookup("BBBBBBBBBBBB"),
            secret_hash: SecretHash::from_phc("$pbkdf2-sha256$i=1$z$w".into()),
            previous_lookup_id: lookup("AAAAAAAAAAAA"),
            previous_valid_until: at + chrono::Duration::hours(1),
            at,
        });
        let text = serde_json::to_string(&state).unwrap();

        let (mut from_state, mut from_text) = (Keys::default(), Keys::default());
        from_state.put(&[], &state);
        Reader::default().add(&mut from_text, &text).unwrap();

        for lookup_id in ["AAAAAAAAAAAA", "BBBBBBBBBBBB"] {
            let l = LookupKey::new(lookup_id).unwrap();
            let (a, b) = (&from_state.by_lookup[&l], &from_text.by_lookup[&l]);
            assert_eq!(
                (a.key_id, a.status, a.expires_at, a.valid_until),
                (b.key_id, b.status, b.expires_at, b.valid_until)
            );
            let (pa, pb) = (&a.profile, &b.profile);
            assert_eq!(
                (
                    pa.tenant.as_str(),
                    pa.environment,
                    pa.scopes,
                    pa.rate_limits,
                    &pa.ip_rules
                ),
                (
                    pb.tenant.as_str(),
                    pb.environment,
                    pb.scopes,
                    pb.rate_limits,
                    &pb.ip_rules
                )
            );
        }
        let empty = serde_json::to_string(&ApiKey::default()).unwrap();
        Reader::default().add(&mut from_text, &empty).unwrap();
    }
}
