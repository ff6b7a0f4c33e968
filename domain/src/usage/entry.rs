//! One stored usage record as streams and exports show it, its place in the log, and the filter
//! that every reader of usage (analytics, streams, export) applies.

use super::{Outcome, StatusClass};
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Records a `usage_batches` row holds, at most: a record's id leaves room for this many.
pub const SEQ_SPAN: i64 = 100_000;

/// A record's place in the usage log: its batch (ids follow commit order) and its place in it.
/// Shown as one decimal number, `batch × 100 000 + seq`, which orders as the log does: the
/// `Last-Event-ID` of a stream and the `after` of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UsageId {
    pub batch: i64,
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a usage record id: {0:?} (a number a stream gave)")]
pub struct BadUsageId(pub String);

impl UsageId {
    /// The id of a record; `None` where it cannot be one (a seq past [`SEQ_SPAN`]).
    pub fn new(batch: i64, seq: i64) -> Option<Self> {
        ((0..SEQ_SPAN).contains(&seq) && (0..i64::MAX / SEQ_SPAN).contains(&batch)).then_some(UsageId { batch, seq })
    }

    /// The last id batch `batch` could hold: what follows is the next batch's.
    pub fn after_batch(batch: i64) -> Self {
        UsageId {
            batch,
            seq: SEQ_SPAN - 1,
        }
    }

    pub fn is_last_of_batch(self) -> bool {
        self.seq == SEQ_SPAN - 1
    }
}

impl fmt::Display for UsageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.batch * SEQ_SPAN + self.seq)
    }
}

impl FromStr for UsageId {
    type Err = BadUsageId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n: i64 = s.trim().parse().map_err(|_| BadUsageId(s.to_owned()))?;
        if n < 0 {
            return Err(BadUsageId(s.to_owned()));
        }
        Ok(UsageId {
            batch: n / SEQ_SPAN,
            seq: n % SEQ_SPAN,
        })
    }
}

/// A stored usage record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEntry {
    pub id: UsageId,
    pub at: DateTime<Utc>,
    /// The subject's texts are shared: a reader hands the same few tenants, keys and endpoints
    /// to thousands of records, and copying them was most of what decoding a record cost.
    pub tenant: Option<Arc<str>>,
    pub key_id: Option<Arc<str>>,
    pub endpoint_id: Option<Arc<str>>,
    pub plugin: Option<Arc<str>>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub outcome: Outcome,
    pub latency_us: i64,
    pub client_ip: Option<String>,
}

/// Which records a reader wants. `tenant: None` is every tenant's (a superuser's choice; the API
/// sets it for everyone else).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub plugin: Option<String>,
    pub outcome: Option<Outcome>,
    pub status_class: Option<StatusClass>,
}

impl UsageFilter {
    /// Whether anything but the tenant narrows the records.
    pub fn narrows(&self) -> bool {
        self.key_id.is_some()
            || self.endpoint_id.is_some()
            || self.plugin.is_some()
            || self.outcome.is_some()
            || self.status_class.is_some()
    }

    pub fn matches(&self, e: &UsageEntry) -> bool {
        fn wanted(want: &Option<String>, has: &Option<Arc<str>>) -> bool {
            want.as_deref().is_none_or(|w| has.as_deref() == Some(w))
        }
        wanted(&self.tenant, &e.tenant)
            && wanted(&self.key_id, &e.key_id)
            && wanted(&self.endpoint_id, &e.endpoint_id)
            && wanted(&self.plugin, &e.plugin)
            && self.outcome.is_none_or(|o| o == e.outcome)
            && self.status_class.is_none_or(|c| StatusClass::of(e.status) == Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> UsageEntry {
        UsageEntry {
            id: UsageId::new(12, 3).unwrap(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            tenant: Some("acme".into()),
            key_id: Some("key_1".into()),
            endpoint_id: Some("ep_1".into()),
            plugin: Some("Files".into()),
            method: "GET".into(),
            path: "/files/1".into(),
            status: 429,
            outcome: Outcome::RateLimited,
            latency_us: 120,
            client_ip: None,
        }
    }

    #[test]
    fn an_id_reads_back_as_it_was_shown_and_orders_as_the_log() {
        let id = UsageId::new(12, 3).unwrap();
        assert_eq!(id.to_string(), "1200003");
        assert_eq!("1200003".parse::<UsageId>(), Ok(id));
        assert!(UsageId::new(12, 99_999).unwrap() < UsageId::new(13, 0).unwrap());
        assert!(UsageId::new(1, SEQ_SPAN).is_none());
        assert!("-1".parse::<UsageId>().is_err());
        assert!(UsageId::after_batch(12) > UsageId::new(12, 9_999).unwrap());
        assert!(UsageId::after_batch(12) < UsageId::new(13, 0).unwrap());
        assert!("abc".parse::<UsageId>().is_err());
    }

    #[test]
    fn a_filter_wants_what_every_given_part_names() {
        let e = entry();
        assert!(UsageFilter::default().matches(&e));
        let tenant = |t: &str| UsageFilter {
            tenant: Some(t.into()),
            ..Default::default()
        };
        assert!(tenant("acme").matches(&e));
        assert!(!tenant("globex").matches(&e));
        let class = |c| UsageFilter {
            status_class: Some(c),
            ..Default::default()
        };
        assert!(class(StatusClass::ClientError).matches(&e));
        assert!(!class(StatusClass::Success).matches(&e));
        let outcome = UsageFilter {
            outcome: Some(Outcome::Valid),
            ..Default::default()
        };
        assert!(!outcome.matches(&e));
        let no_key = UsageEntry { key_id: None, ..e };
        let key = UsageFilter {
            key_id: Some("key_1".into()),
            ..Default::default()
        };
        assert!(!key.matches(&no_key));
    }
}
