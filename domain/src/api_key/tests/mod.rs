mod expiry;
mod lifecycle;

use super::*;
use crate::ip_rules::CidrRule;
use crate::scope::ScopeGrant;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;

type KeyTest = TestFramework<ApiKey>;

fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0).unwrap()
}

fn lookup(c: char) -> LookupId {
    LookupId::try_from(c.to_string().repeat(12)).unwrap()
}

fn hash(s: &str) -> SecretHash {
    SecretHash::from_phc(format!("$pbkdf2-sha256$i=1${s}"))
}

fn scopes(list: &[&str]) -> BTreeSet<Scope> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn key_id() -> Uuid {
    Uuid::from_u128(7)
}

fn issue_cmd() -> IssueKey {
    IssueKey {
        key_id: key_id(),
        tenant: "acme".parse().unwrap(),
        name: "Main App".parse().unwrap(),
        environment: Environment::Live,
        lookup_id: lookup('a'),
        secret_hash: hash("one"),
        scopes: scopes(&["FILES_READ"]),
        rate_limits: RateLimits::default(),
        ip_rules: IpRules::default(),
        expires_at: Some(t(0) + chrono::Duration::days(30)),
        granter: ScopeGrant::All,
        at: t(0),
    }
}

fn issued() -> ApiKeyEvent {
    let c = issue_cmd();
    ApiKeyEvent::KeyIssued {
        key_id: c.key_id,
        tenant: c.tenant,
        name: c.name,
        environment: c.environment,
        lookup_id: c.lookup_id,
        secret_hash: c.secret_hash,
        scopes: c.scopes,
        rate_limits: c.rate_limits,
        ip_rules: c.ip_rules,
        expires_at: c.expires_at,
        at: c.at,
    }
}

fn no_change(at: DateTime<Utc>) -> ChangeKey {
    ChangeKey {
        name: None,
        scopes: None,
        rate_limits: None,
        ip_allow: None,
        ip_block: None,
        granter: ScopeGrant::All,
        at,
    }
}
