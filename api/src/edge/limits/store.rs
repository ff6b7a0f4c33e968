//! A key's GCRA states and the state stores through which a plan's limiters (governor) read and
//! write them.

use governor::nanos::Nanos;
use governor::state::StateStore;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The windows a key may have limits in.
const WINDOWS: usize = 4;

/// A key's GCRA states, one a window of its plan, in the plan's order (governor's theoretical
/// arrival time; 0 before the first request).
#[derive(Default)]
struct Tats([AtomicU64; WINDOWS]);

/// How a plan's limiters are told whose states to use: governor's keyed limiters take a key,
/// and this key is the states themselves, compared by address (no limiter ever hashes it).
#[derive(Clone, Default)]
pub(super) struct Slot(Arc<Tats>);

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Slot {}

impl Hash for Slot {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state)
    }
}

/// The state store of a plan's window `.0` that takes from the bucket.
pub(super) struct Taking(pub(super) usize);

/// The same window's states, read and never written.
pub(super) struct Looking(pub(super) usize);

impl StateStore for Taking {
    type Key = Slot;

    fn measure_and_replace<T, F, E>(&self, key: &Slot, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let state = &key.0 .0[self.0];
        // Compare-and-swap until no other request changed the state in between.
        let mut prev = state.load(Ordering::Acquire);
        loop {
            let (result, next) = f(NonZeroU64::new(prev).map(|n| n.get().into()))?;
            match state.compare_exchange_weak(prev, next.into(), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return Ok(result),
                Err(now) => prev = now,
            }
        }
    }
}

impl StateStore for Looking {
    type Key = Slot;

    fn measure_and_replace<T, F, E>(&self, key: &Slot, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let prev = key.0 .0[self.0].load(Ordering::Acquire);
        f(NonZeroU64::new(prev).map(|n| n.get().into())).map(|(result, _)| result)
    }
}
