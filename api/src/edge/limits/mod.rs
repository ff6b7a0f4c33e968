//! Per-key rate limits: GCRA (governor) per key and configured window.
//!
//! A window's bucket holds its whole quota (60 per minute may arrive at once) and refills evenly
//! (one per second). The per-second window's capacity is `burst` when that is larger. Buckets
//! live in this node's memory: limits are exact per node; nodes behind a load balancer each
//! enforce the full quota.
//!
//! What a key keeps is its GCRA state alone, a number a window (`store::Tats`). The limiters, their
//! quotas and the RateLimit-Policy header are a [`Plan`]'s, shared by every key on the same
//! limits: built per key, they were about a kilobyte of every key that had made a request
//! (README: "A million keys").
//!
//! Each window of a plan has two limiters over the same states: one takes from the bucket (the
//! edge), one only looks (the explorer's Test, which must say what the edge would answer
//! without spending the key's quota). governor has no peek of its own.

use axum::http::HeaderValue;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
use keyledger_domain::rate_limits::RateLimits;
use keyledger_projections::edge_cache::KeyIdText;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

mod store;
use store::{Looking, Slot, Taking};

type Bucket<S> = RateLimiter<Slot, S, DefaultClock, StateInformationMiddleware>;

/// Whether a decision spends the key's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// A request the edge answers.
    Take,
    /// A question about what the edge would answer (the explorer's Test).
    Look,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    Second,
    Minute,
    Hour,
    Day,
}

impl Window {
    fn seconds(self) -> u64 {
        match self {
            Window::Second => 1,
            Window::Minute => 60,
            Window::Hour => 3_600,
            Window::Day => 86_400,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }
}

/// What the rate-limit headers report: the window with the least room left.
#[derive(Debug, Clone, PartialEq)]
pub struct RateState {
    /// That window; `None` for a key without limits.
    pub window: Option<Window>,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset: u64,
    /// `"minute";q=60;w=60, "hour";q=3600;w=3600` (IETF RateLimit-Policy), built once per key.
    pub policy: HeaderValue,
    /// On refusal: seconds until a request would pass (Retry-After).
    pub retry_after: Option<u64>,
}

impl RateState {
    /// `"minute";r=59;t=1` (the IETF RateLimit field). Written with itoa into the header's own
    /// buffer: `format!` was a quarter of the time spent on an answer's headers.
    pub fn current(&self) -> Option<HeaderValue> {
        let name = self.window?.name();
        let (mut r, mut t) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (r, t) = (r.format(self.remaining), t.format(self.reset));
        let mut out = Vec::with_capacity(name.len() + r.len() + t.len() + 8);
        for part in [b"\"", name.as_bytes(), b"\";r=", r.as_bytes(), b";t=", t.as_bytes()] {
            out.extend_from_slice(part);
        }
        // A window's name and two numbers: always a valid header value.
        HeaderValue::from_maybe_shared(bytes::Bytes::from(out)).ok()
    }
}

struct WindowBucket {
    window: Window,
    limit: u32,
    capacity: u32,
    period: Duration,
    bucket: Bucket<Taking>,
    /// Built beside `bucket`, so both count time from the same start.
    preview: Bucket<Looking>,
}

/// The limiters of one set of limits, shared by every key on it.
struct Plan {
    limits: RateLimits,
    windows: Vec<WindowBucket>,
    policy: HeaderValue,
}

impl Plan {
    fn new(limits: &RateLimits) -> Self {
        let windows: Vec<WindowBucket> = windows(limits)
            .into_iter()
            .enumerate()
            .map(|(at, (window, limit, capacity))| {
                let period = Duration::from_secs(window.seconds()) / limit.max(1);
                let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
                    .expect("a positive period")
                    .allow_burst(NonZeroU32::new(capacity.max(1)).expect("positive"));
                let clock = DefaultClock::default();
                let preview: Bucket<Looking> = RateLimiter::new(quota, Looking(at), clock.clone());
                let bucket: Bucket<Taking> = RateLimiter::new(quota, Taking(at), clock);
                WindowBucket {
                    window,
                    limit,
                    capacity,
                    period,
                    bucket,
                    preview,
                }
            })
            .collect();
        let policy = windows
            .iter()
            .map(|w| format!("\"{}\";q={};w={}", w.window.name(), w.limit, w.window.seconds()))
            .collect::<Vec<_>>()
            .join(", ");
        Plan {
            limits: *limits,
            windows,
            // Window names and numbers only: always a valid header value.
            policy: HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("")),
        }
    }
}

/// A key's states and the plan they count in (whose limits are the key's).
struct KeyRate {
    plan: Arc<Plan>,
    tats: Slot,
}

/// Key ids are drawn by the issuer, never chosen by a client: foldhash rather than SipHash.
type Hashed = foldhash::fast::RandomState;

#[derive(Default)]
pub struct RateLimiters {
    keys: DashMap<KeyIdText, KeyRate, Hashed>,
    plans: DashMap<RateLimits, Arc<Plan>, Hashed>,
    clock: DefaultClock,
}

fn windows(limits: &RateLimits) -> Vec<(Window, u32, u32)> {
    let burst = limits.burst().unwrap_or(0);
    [
        (Window::Second, limits.per_second()),
        (Window::Minute, limits.per_minute()),
        (Window::Hour, limits.per_hour()),
        (Window::Day, limits.per_day()),
    ]
    .into_iter()
    .filter_map(|(w, limit)| {
        let limit = limit?;
        let capacity = if w == Window::Second { limit.max(burst) } else { limit };
        Some((w, limit, capacity))
    })
    .collect()
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateLimiters {
    /// Fresh states (nothing taken yet) in the plan of `limits`.
    fn fresh(&self, limits: &RateLimits) -> KeyRate {
        let plan = self
            .plans
            .entry(*limits)
            .or_insert_with(|| Arc::new(Plan::new(limits)))
            .clone();
        KeyRate {
            plan,
            tats: Slot::default(),
        }
    }

    /// Takes one request from every window of the key; `Err` carries the headers of a refusal.
    #[cfg(test)]
    pub fn check(&self, key_id: KeyIdText, limits: &RateLimits) -> Result<RateState, RateState> {
        self.decide(key_id, limits, Spend::Take)
    }

    /// What [`Self::check`] would answer now, taking nothing.
    #[cfg(test)]
    pub fn peek(&self, key_id: KeyIdText, limits: &RateLimits) -> Result<RateState, RateState> {
        self.decide(key_id, limits, Spend::Look)
    }

    /// Takes one request from every window of the key ([`Spend::Take`]), or answers what that
    /// would give without taking ([`Spend::Look`]); `Err` carries the headers of a refusal. A
    /// key's states are made on its first request, and again when its limits change (a new
    /// quota starts afresh).
    pub fn decide(&self, key_id: KeyIdText, limits: &RateLimits, spend: Spend) -> Result<RateState, RateState> {
        // The common path reads the map and takes from the buckets in place: a reference count
        // taken here would be one more counter that every request for this key, on every core,
        // writes.
        if let Some(known) = self.keys.get(&key_id).filter(|k| k.plan.limits == *limits) {
            return self.take(&known, spend);
        }
        // A look at a key with no states on these limits answers as its first request would,
        // and keeps nothing: the explorer's Test must not make or reset a key's states.
        if spend == Spend::Look {
            return self.take(&self.fresh(limits), spend);
        }
        let mut entry = self.keys.entry(key_id).or_insert_with(|| self.fresh(limits));
        if entry.plan.limits != *limits {
            *entry = self.fresh(limits);
        }
        self.take(&entry.downgrade(), spend)
    }

    fn take(&self, key: &KeyRate, spend: Spend) -> Result<RateState, RateState> {
        let mut tightest: Option<(&WindowBucket, u32, u64)> = None;
        for w in &key.plan.windows {
            let checked = match spend {
                Spend::Take => w.bucket.check_key(&key.tats),
                Spend::Look => w.preview.check_key(&key.tats),
            };
            match checked {
                Ok(snapshot) => {
                    let remaining = snapshot.remaining_burst_capacity();
                    let reset = ceil_secs(w.period * (w.capacity - remaining.min(w.capacity)));
                    if tightest.is_none_or(|(_, r, _)| remaining < r) {
                        tightest = Some((w, remaining, reset));
                    }
                }
                Err(not_until) => {
                    let wait = ceil_secs(not_until.wait_time_from(self.clock.now())).max(1);
                    return Err(RateState {
                        window: Some(w.window),
                        limit: w.limit,
                        remaining: 0,
                        reset: wait,
                        policy: key.plan.policy.clone(),
                        retry_after: Some(wait),
                    });
                }
            }
        }
        Ok(match tightest {
            Some((w, remaining, reset)) => RateState {
                window: Some(w.window),
                limit: w.limit,
                remaining,
                reset,
                policy: key.plan.policy.clone(),
                retry_after: None,
            },
            None => RateState {
                window: None,
                limit: 0,
                remaining: 0,
                reset: 0,
                policy: key.plan.policy.clone(),
                retry_after: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyledger_domain::rate_limits::RateLimitsInput;

    fn key(n: u128) -> KeyIdText {
        KeyIdText::of(uuid::Uuid::from_u128(n))
    }

    fn limits(per_minute: u64) -> RateLimits {
        RateLimits::try_from(RateLimitsInput {
            per_minute: Some(per_minute),
            per_hour: Some(3_600),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn a_window_allows_its_quota_then_refuses_with_an_honest_retry_after() {
        let limiters = RateLimiters::default();
        let l = limits(5);
        for expected_remaining in (0..5).rev() {
            let state = limiters.check(key(1), &l).unwrap();
            assert_eq!((state.limit, state.remaining), (5, expected_remaining));
        }
        let refused = limiters.check(key(1), &l).unwrap_err();
        assert_eq!((refused.limit, refused.remaining), (5, 0));
        // 5 per minute refills one every 12 seconds.
        assert!((11..=12).contains(&refused.retry_after.unwrap()), "{refused:?}");
        assert_eq!(refused.policy, "\"minute\";q=5;w=60, \"hour\";q=3600;w=3600");
        assert_eq!(
            refused.current().unwrap(),
            format!("\"minute\";r=0;t={}", refused.reset)
        );
        assert!(limiters.check(key(2), &l).is_ok(), "keys have their own buckets");
        assert_eq!(limiters.plans.len(), 1, "and share the limiters of their limits");
    }

    /// The edge's own promise: however many requests race for a key's quota, exactly the quota
    /// passes.
    #[test]
    fn racing_requests_take_exactly_the_quota() {
        let limiters = RateLimiters::default();
        // A day's quota: nothing refills while the test runs, however slow the machine.
        let l = RateLimits::try_from(RateLimitsInput {
            per_minute: Some(1_000_000),
            per_hour: Some(1_000_000),
            per_day: Some(1_000),
            ..Default::default()
        })
        .unwrap();
        let passed: usize = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..400).filter(|_| limiters.check(key(1), &l).is_ok()).count()))
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        assert_eq!(passed, 1_000);
    }

    #[test]
    fn changed_limits_start_a_fresh_bucket() {
        let limiters = RateLimiters::default();
        for _ in 0..2 {
            limiters.check(key(1), &limits(2)).unwrap();
        }
        assert!(limiters.check(key(1), &limits(2)).is_err());
        assert_eq!(
            limiters.peek(key(1), &limits(3)).unwrap().remaining,
            2,
            "a look on the new limits answers as a fresh bucket"
        );
        assert!(limiters.check(key(1), &limits(2)).is_err(), "and resets nothing");
        assert!(limiters.check(key(1), &limits(3)).is_ok());
    }

    #[test]
    fn a_peek_answers_what_a_check_would_and_takes_nothing() {
        let limiters = RateLimiters::default();
        let l = limits(2);
        assert_eq!(
            limiters.peek(key(1), &l).unwrap().remaining,
            1,
            "as if it were the first"
        );
        assert!(limiters.keys.is_empty(), "a look makes no states");
        assert_eq!(
            limiters.peek(key(1), &l).unwrap().remaining,
            1,
            "and still nothing taken"
        );
        assert_eq!(limiters.check(key(1), &l).unwrap().remaining, 1);
        assert_eq!(limiters.peek(key(1), &l).unwrap().remaining, 0);
        assert_eq!(limiters.check(key(1), &l).unwrap().remaining, 0);
        let peeked = limiters.peek(key(1), &l).unwrap_err();
        let refused = limiters.check(key(1), &l).unwrap_err();
        assert_eq!((peeked.limit, peeked.window), (refused.limit, refused.window));
        assert!(peeked.retry_after.unwrap().abs_diff(refused.retry_after.unwrap()) <= 1);
    }
}
