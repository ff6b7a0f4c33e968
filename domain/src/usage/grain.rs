//! The grains of the usage rollups: which parts of a record a rollup row keeps.

use super::UsageFilter;
use std::fmt;
use std::str::FromStr;

/// Which parts a rollup row keeps beyond its bucket, tenant, outcome and status: a record counts
/// once in a row of each grain. A 90-day report over the whole tenant reads its `Tenant` rows,
/// a few per day, rather than a row per key × endpoint × outcome × status per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grain {
    /// Per tenant only.
    Tenant,
    /// Per endpoint and its plugin.
    Endpoint,
    /// Per key.
    Key,
    /// Per key, endpoint and plugin.
    Detail,
}

impl Grain {
    pub const ALL: [Grain; 4] = [Grain::Tenant, Grain::Endpoint, Grain::Key, Grain::Detail];

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Tenant => "tenant",
            Grain::Endpoint => "endpoint",
            Grain::Key => "key",
            Grain::Detail => "detail",
        }
    }

    pub fn holds_key(self) -> bool {
        matches!(self, Grain::Key | Grain::Detail)
    }

    pub fn holds_endpoint(self) -> bool {
        matches!(self, Grain::Endpoint | Grain::Detail)
    }

    /// The coarsest grain that answers `filter` grouped by key (`by_key`) or by endpoint and
    /// plugin (`by_endpoint`): every part the filter names or the grouping needs is kept.
    pub fn answering(filter: &UsageFilter, by_key: bool, by_endpoint: bool) -> Grain {
        let key = by_key || filter.key_id.is_some();
        let endpoint = by_endpoint || filter.endpoint_id.is_some() || filter.plugin.is_some();
        match (key, endpoint) {
            (false, false) => Grain::Tenant,
            (false, true) => Grain::Endpoint,
            (true, false) => Grain::Key,
            (true, true) => Grain::Detail,
        }
    }
}

impl fmt::Display for Grain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a rollup grain is tenant, endpoint, key or detail, not {0:?}")]
pub struct UnknownGrain(pub String);

impl FromStr for Grain {
    type Err = UnknownGrain;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Grain::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| UnknownGrain(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Outcome;

    #[test]
    fn the_coarsest_grain_that_holds_what_is_asked_answers() {
        let none = UsageFilter::default();
        let key = UsageFilter {
            key_id: Some("k1".into()),
            ..Default::default()
        };
        let plugin = UsageFilter {
            plugin: Some("Files".into()),
            outcome: Some(Outcome::Valid),
            ..Default::default()
        };
        assert_eq!(Grain::answering(&none, false, false), Grain::Tenant);
        assert_eq!(Grain::answering(&none, true, false), Grain::Key);
        assert_eq!(Grain::answering(&none, false, true), Grain::Endpoint);
        assert_eq!(Grain::answering(&key, false, false), Grain::Key);
        assert_eq!(Grain::answering(&key, false, true), Grain::Detail);
        assert_eq!(Grain::answering(&plugin, false, false), Grain::Endpoint);
        assert_eq!(Grain::answering(&plugin, true, false), Grain::Detail);
        assert_eq!("key".parse::<Grain>(), Ok(Grain::Key));
        assert!("keys".parse::<Grain>().is_err());
    }
}
