//! The cell a record is first counted in when rollups are built: its minute at the finest grain.

use super::{Grain, Outcome, Period, RollupKey};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A record's detail minute as `add` counts it, its texts shared with the records.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Minute {
    pub(super) bucket: DateTime<Utc>,
    pub(super) tenant: Shared,
    pub(super) key_id: Shared,
    pub(super) endpoint_id: Shared,
    pub(super) plugin: Shared,
    pub(super) outcome: Outcome,
    pub(super) status: u16,
}

impl Minute {
    pub(super) fn key(&self) -> RollupKey {
        let part = |p: &Shared| p.0.as_deref().unwrap_or_default().to_owned();
        RollupKey {
            grain: Grain::Detail,
            period: Period::Minute,
            bucket: self.bucket,
            tenant: part(&self.tenant),
            key_id: part(&self.key_id),
            endpoint_id: part(&self.endpoint_id),
            plugin: part(&self.plugin),
            outcome: self.outcome,
            status: self.status,
        }
    }
}

/// A record's text, compared and hashed by which shared text it is rather than by its
/// characters: a reader hands one subject's records the same texts, so a minute costs four
/// pointers to hash, not four ids. Equal texts under two pointers only count a minute in two
/// parts, which `settle` adds into the same cells by their characters.
#[derive(Debug)]
pub(super) struct Shared(pub(super) Option<Arc<str>>);

impl Shared {
    fn address(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |text| Arc::as_ptr(text).cast::<u8>() as usize)
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        self.address() == other.address()
    }
}

impl Eq for Shared {}

impl std::hash::Hash for Shared {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.address().hash(state);
    }
}
