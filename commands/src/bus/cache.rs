//! The aggregates this node has loaded lately, with their versions, so that a command reads only
//! the events appended since (usually none) instead of replaying the whole stream: a key
//! changed a thousand times otherwise costs a thousand events per command. Other nodes' appends
//! are read as those later events; a stale entry can only make an append conflict, never win.

use cqrs_es::Aggregate;
use lru::LruCache;
use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Aggregates kept per node.
const CAPACITY: usize = 10_000;

type Entry = (Arc<dyn Any + Send + Sync>, usize);

#[derive(Clone)]
pub(super) struct States {
    inner: Arc<Mutex<LruCache<(&'static str, String), Entry>>>,
}

impl Default for States {
    fn default() -> Self {
        let capacity = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        States {
            inner: Arc::new(Mutex::new(LruCache::new(capacity))),
        }
    }
}

impl States {
    /// The state and version last seen of `id`, if kept.
    pub(super) fn get<A: Aggregate + Clone + 'static>(&self, id: &str) -> Option<(A, usize)> {
        let mut inner = self.inner.lock().ok()?;
        let (state, version) = inner.get(&(A::TYPE, id.to_owned()))?;
        let state = state.downcast_ref::<A>()?.clone();
        Some((state, *version))
    }

    pub(super) fn put<A: Aggregate + Clone + 'static>(&self, id: &str, state: &A, version: usize) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.put((A::TYPE, id.to_owned()), (Arc::new(state.clone()), version));
        }
    }
}
