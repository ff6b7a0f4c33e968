//! The edge's keys: an entry per presentable secret by lookup id, and the profiles the entries
//! share. No key's folded state is kept here: see [`States`] for the few that are. Nor is a
//! table by key id: the edge never asks by key id, and the admin's rare question (the
//! explorer's Test) reads the key's secrets from its stream (`EdgeCache::key_by_id`).

use super::entries::{KeyEntry, KeyFacts, LookupKey, Verifier};
use super::profile::{Profiles, Settings};
use crate::read_models::key_secrets;
use chrono::{DateTime, Utc};
use keyledger_domain::ApiKey;
use lru::LruCache;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use uuid::Uuid;

/// The tables' hasher: foldhash, seeded at random per process, rather than SipHash. Their keys
/// are lookup ids and key ids the issuer drew at random, never chosen by a client, so a
/// client cannot aim at one bucket; a million inserts at start and a lookup per request hash
/// several times faster.
type Tables<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
pub(super) struct Keys {
    /// Arc: a request takes its entry with a reference count, not a copy.
    pub(super) by_lookup: Tables<LookupKey, Arc<KeyEntry>>,
    pub(super) profiles: Profiles,
}

/// The lookup ids of the secrets a state accepts.
pub(super) fn secrets_of(state: &ApiKey) -> Vec<LookupKey> {
    state
        .issued()
        .into_iter()
        .flat_map(key_secrets)
        .filter_map(|(lookup_id, _, _)| LookupKey::new(lookup_id.as_str()))
        .collect()
}

impl Keys {
    /// Room for `keys` keys of one secret each, made once: a start-up snapshot of a million
    /// keys spent a tenth of its time growing the tables as it went.
    pub(super) fn with_capacity(keys: usize) -> Self {
        Keys {
            by_lookup: Tables::with_capacity_and_hasher(keys, Default::default()),
            profiles: Profiles::default(),
        }
    }

    /// Puts the entries of `state` in place of those of the secrets the key had,
    /// `before`, keeping what is known of the verifier of a secret it still has. A secret new to
    /// this node starts [`Verifier::Unknown`]: its verifier is looked for on first use.
    pub(super) fn put(&mut self, before: &[LookupKey], state: &ApiKey) {
        let previous: Vec<Arc<KeyEntry>> = before.iter().filter_map(|l| self.by_lookup.remove(l)).collect();
        let Some(key) = state.issued() else { return };
        let facts = KeyFacts::of(key, self.profiles.of(&Settings::of(key)));
        let secrets = key_secrets(key)
            // Parsed lookup ids always have the length.
            .filter_map(|(lookup_id, _, valid_until)| Some((LookupKey::new(lookup_id.as_str())?, valid_until)));
        self.insert(&facts, secrets, &previous);
    }

    /// Puts an entry for each of a key's secrets (with the retired one's deadline), taking the
    /// verifier known of it from `previous`.
    pub(super) fn insert(
        &mut self,
        facts: &KeyFacts,
        secrets: impl IntoIterator<Item = (LookupKey, Option<DateTime<Utc>>)>,
        previous: &[Arc<KeyEntry>],
    ) {
        for (lookup, valid_until) in secrets {
            let verifier = previous
                .iter()
                .find(|e| e.lookup_id == lookup)
                .map_or(Verifier::Unknown, |e| e.verifier.clone());
            self.by_lookup
                .insert(lookup, Arc::new(facts.entry(lookup, valid_until, verifier)));
        }
    }

    /// Remembers what is known of a secret's verifier; false when no entry has that lookup id.
    pub(super) fn set_verifier(&mut self, lookup: &LookupKey, verifier: Verifier) -> bool {
        match self.by_lookup.get_mut(lookup) {
            Some(entry) => {
                Arc::make_mut(entry).verifier = verifier;
                true
            }
            None => false,
        }
    }

    /// After a snapshot's verifiers are set, `set` of them on an entry: a secret still
    /// [`Verifier::Unknown`] has none. Looked for only when some entry was not set: a pass over
    /// a million entries, each in a cache line of its own, was a twentieth of a restart.
    pub(super) fn unknown_not_stored(&mut self, set: usize) {
        if set >= self.by_lookup.len() {
            return;
        }
        for entry in self.by_lookup.values_mut() {
            if entry.verifier == Verifier::Unknown {
                Arc::make_mut(entry).verifier = Verifier::NotStored;
            }
        }
    }
}

/// Folded key states, by key id, with the sequence of the last event folded into each: all a
/// key's next event needs to be folded. Only the most recently folded are kept (a key's state
/// is ten times its entry); one not kept is folded again from the key's stream when its next
/// event comes, which a million keys make rare, not slow.
pub(super) struct States(LruCache<Uuid, (ApiKey, i64)>);

/// States kept by default: the keys changed most recently, as the bus keeps aggregates.
pub(super) const STATES_KEPT: usize = 10_000;

impl States {
    pub(super) fn new(kept: usize) -> Self {
        States(LruCache::new(NonZeroUsize::new(kept).unwrap_or(NonZeroUsize::MIN)))
    }

    /// The state of `key_id` and the sequence it is folded to, if kept (taken out).
    pub(super) fn take(&mut self, key_id: &Uuid) -> Option<(ApiKey, i64)> {
        self.0.pop(key_id)
    }

    pub(super) fn keep(&mut self, key_id: Uuid, state: ApiKey, sequence: i64) {
        self.0.put(key_id, (state, sequence));
    }
}
