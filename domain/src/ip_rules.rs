//! IP allow and block lists for a key.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// More rules than this per list is almost surely a mistake (and would slow every request).
pub const MAX_RULES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpRuleError {
    #[error("{0:?} is not an IP address or CIDR block")]
    Invalid(String),
    #[error("{0:?} has host bits set; did you mean {1}?")]
    HostBitsSet(String, String),
    #[error("at most {MAX_RULES} rules per list")]
    TooMany,
}

/// One IPv4 or IPv6 address or CIDR block. A bare address means exactly that address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CidrRule(IpNet);

impl CidrRule {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

/// `::ffff:10.0.0.1` is the IPv4 client 10.0.0.1 on a dual-stack socket; match it as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl TryFrom<String> for CidrRule {
    type Error = IpRuleError;
    fn try_from(raw: String) -> Result<Self, IpRuleError> {
        let trimmed = raw.trim();
        if let Ok(ip) = trimmed.parse::<IpAddr>() {
            return Ok(CidrRule(IpNet::from(canonical(ip))));
        }
        let net: IpNet = trimmed.parse().map_err(|_| IpRuleError::Invalid(raw.clone()))?;
        // A block written with host bits ("10.0.0.1/8") usually hides a typo; say so instead of
        // silently widening or narrowing it.
        if net.trunc() != net {
            return Err(IpRuleError::HostBitsSet(raw.clone(), net.trunc().to_string()));
        }
        Ok(CidrRule(net))
    }
}

impl From<CidrRule> for String {
    fn from(r: CidrRule) -> String {
        r.to_string()
    }
}

impl fmt::Display for CidrRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The allow and block lists of one key. Block wins over allow; an empty allow list allows all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRules {
    allow: Vec<CidrRule>,
    block: Vec<CidrRule>,
}

impl IpRules {
    pub fn new(mut allow: Vec<CidrRule>, mut block: Vec<CidrRule>) -> Result<Self, IpRuleError> {
        if allow.len() > MAX_RULES || block.len() > MAX_RULES {
            return Err(IpRuleError::TooMany);
        }
        allow.sort();
        allow.dedup();
        block.sort();
        block.dedup();
        Ok(IpRules { allow, block })
    }

    pub fn allow(&self) -> &[CidrRule] {
        &self.allow
    }

    pub fn block(&self) -> &[CidrRule] {
        &self.block
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.block.iter().any(|r| r.contains(ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|r| r.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> CidrRule {
        CidrRule::try_from(s.to_owned()).unwrap()
    }

    #[test]
    fn addresses_and_blocks_of_both_families_parse() {
        assert_eq!(rule("10.0.0.1").to_string(), "10.0.0.1/32");
        assert_eq!(rule("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(rule("::ffff:10.0.0.1").to_string(), "10.0.0.1/32");
        assert!(matches!(
            CidrRule::try_from("10.0.0.1/8".to_owned()),
            Err(IpRuleError::HostBitsSet(..))
        ));
        assert!(matches!(
            CidrRule::try_from("banana".to_owned()),
            Err(IpRuleError::Invalid(_))
        ));
    }

    #[test]
    fn block_wins_over_allow_and_empty_allow_allows_all() {
        let rules = IpRules::new(
            vec![rule("10.0.0.0/8"), rule("2001:db8::/32")],
            vec![rule("10.1.0.0/16")],
        )
        .unwrap();
        assert!(rules.permits("10.2.3.4".parse().unwrap()));
        assert!(rules.permits("::ffff:10.2.3.4".parse().unwrap()));
        assert!(!rules.permits("10.1.3.4".parse().unwrap()));
        assert!(!rules.permits("192.168.1.1".parse().unwrap()));
        assert!(rules.permits("2001:db8::1".parse().unwrap()));
        assert!(IpRules::default().permits("8.8.8.8".parse().unwrap()));
    }
}
