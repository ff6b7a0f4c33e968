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

#[tokio::test]
async fn issuing_a_new_key_records_it() {
    KeyTest::with(())
        .given_no_previous_events()
        .when_async(ApiKeyCommand::Issue(issue_cmd()))
        .await
        .then_expect_events(vec![issued()]);
}

#[tokio::test]
async fn issuing_the_same_key_twice_is_rejected() {
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Issue(issue_cmd()))
        .await
        .then_expect_error(ApiKeyError::KeyAlreadyIssued);
}

#[tokio::test]
async fn granting_a_scope_the_admin_does_not_hold_is_rejected() {
    let cmd = IssueKey {
        granter: ScopeGrant::Only(scopes(&["CHAT_READ"])),
        ..issue_cmd()
    };
    KeyTest::with(())
        .given_no_previous_events()
        .when_async(ApiKeyCommand::Issue(cmd))
        .await
        .then_expect_error(ApiKeyError::ScopeNotGrantable {
            scope: "FILES_READ".parse().unwrap(),
        });
}

#[tokio::test]
async fn issuing_a_key_that_expires_in_the_past_is_rejected() {
    let cmd = IssueKey {
        expires_at: Some(t(0)),
        ..issue_cmd()
    };
    KeyTest::with(())
        .given_no_previous_events()
        .when_async(ApiKeyCommand::Issue(cmd))
        .await
        .then_expect_error(ApiKeyError::ExpiryInPast);
}

#[tokio::test]
async fn changing_fields_emits_one_event_per_changed_field() {
    let allow = vec![CidrRule::try_from("10.0.0.0/8".to_owned()).unwrap()];
    let change = ChangeKey {
        name: Some("Main App".parse().unwrap()), // unchanged: no event
        scopes: Some(scopes(&["FILES_READ", "CHAT_READ"])),
        ip_allow: Some(allow.clone()),
        ..no_change(t(1))
    };
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Change(change))
        .await
        .then_expect_events(vec![
            ApiKeyEvent::KeyScopesChanged {
                scopes: scopes(&["FILES_READ", "CHAT_READ"]),
                at: t(1),
            },
            ApiKeyEvent::KeyIpRulesChanged {
                ip_rules: IpRules::new(allow, vec![]).unwrap(),
                at: t(1),
            },
        ]);
}

#[tokio::test]
async fn replacing_one_ip_list_keeps_the_other() {
    let rule = |r: &str| CidrRule::try_from(r.to_owned()).unwrap();
    let allowed = ApiKeyEvent::KeyIpRulesChanged {
        ip_rules: IpRules::new(vec![rule("10.0.0.0/8")], vec![]).unwrap(),
        at: t(1),
    };
    KeyTest::with(())
        .given(vec![issued(), allowed])
        .when_async(ApiKeyCommand::Change(ChangeKey {
            ip_block: Some(vec![rule("10.1.2.3")]),
            ..no_change(t(2))
        }))
        .await
        .then_expect_events(vec![ApiKeyEvent::KeyIpRulesChanged {
            ip_rules: IpRules::new(vec![rule("10.0.0.0/8")], vec![rule("10.1.2.3")]).unwrap(),
            at: t(2),
        }]);
}

#[tokio::test]
async fn too_many_ip_rules_are_refused() {
    let many = (0..=crate::ip_rules::MAX_RULES)
        .map(|i| CidrRule::try_from(format!("10.0.{}.{}", i / 256, i % 256)).unwrap())
        .collect();
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Change(ChangeKey {
            ip_allow: Some(many),
            ..no_change(t(1))
        }))
        .await
        .then_expect_error(ApiKeyError::IpRules(crate::ip_rules::IpRuleError::TooMany));
}

#[tokio::test]
async fn keeping_a_scope_granted_by_someone_else_is_allowed_but_adding_one_is_not() {
    let limited = ScopeGrant::Only(scopes(&["CHAT_READ"]));
    let keep = ChangeKey {
        scopes: Some(scopes(&["FILES_READ", "CHAT_READ"])),
        granter: limited.clone(),
        ..no_change(t(1))
    };
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Change(keep))
        .await
        .then_expect_events(vec![ApiKeyEvent::KeyScopesChanged {
            scopes: scopes(&["FILES_READ", "CHAT_READ"]),
            at: t(1),
        }]);
    let add = ChangeKey {
        scopes: Some(scopes(&["FILES_READ", "FILES_WRITE"])),
        granter: limited,
        ..no_change(t(1))
    };
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Change(add))
        .await
        .then_expect_error(ApiKeyError::ScopeNotGrantable {
            scope: "FILES_WRITE".parse().unwrap(),
        });
}

#[tokio::test]
async fn changing_a_revoked_key_is_rejected() {
    KeyTest::with(())
        .given(vec![issued(), ApiKeyEvent::KeyRevoked { reason: None, at: t(1) }])
        .when_async(ApiKeyCommand::Change(ChangeKey {
            name: Some("x".parse().unwrap()),
            ..no_change(t(2))
        }))
        .await
        .then_expect_error(ApiKeyError::KeyNotActive {
            status: KeyStatus::Revoked,
        });
}

#[tokio::test]
async fn changing_a_key_past_its_expiry_is_rejected_even_before_the_scheduler_ran() {
    let later = t(0) + chrono::Duration::days(31);
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Change(ChangeKey {
            name: Some("x".parse().unwrap()),
            ..no_change(later)
        }))
        .await
        .then_expect_error(ApiKeyError::KeyNotActive {
            status: KeyStatus::Expired,
        });
}

#[tokio::test]
async fn changing_a_key_that_was_never_issued_is_rejected() {
    KeyTest::with(())
        .given_no_previous_events()
        .when_async(ApiKeyCommand::Change(no_change(t(1))))
        .await
        .then_expect_error(ApiKeyError::KeyNotFound);
}

#[tokio::test]
async fn revoking_an_active_key_records_it() {
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Revoke(RevokeKey {
            reason: Some("leaked".into()),
            at: t(1),
        }))
        .await
        .then_expect_events(vec![ApiKeyEvent::KeyRevoked {
            reason: Some("leaked".into()),
            at: t(1),
        }]);
}

#[tokio::test]
async fn revoking_a_revoked_key_is_rejected() {
    KeyTest::with(())
        .given(vec![issued(), ApiKeyEvent::KeyRevoked { reason: None, at: t(1) }])
        .when_async(ApiKeyCommand::Revoke(RevokeKey { reason: None, at: t(2) }))
        .await
        .then_expect_error(ApiKeyError::KeyAlreadyRevoked);
}

#[tokio::test]
async fn a_revocation_reason_longer_than_500_characters_is_rejected() {
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Revoke(RevokeKey {
            reason: Some("x".repeat(501)),
            at: t(1),
        }))
        .await
        .then_expect_error(ApiKeyError::ReasonTooLong);
}

#[tokio::test]
async fn rotating_keeps_the_old_secret_until_the_grace_deadline() {
    let rotate = RotateKey {
        lookup_id: lookup('b'),
        secret_hash: hash("two"),
        grace: chrono::Duration::hours(2),
        at: t(1),
    };
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Rotate(rotate))
        .await
        .then_expect_events(vec![ApiKeyEvent::KeyRotated {
            lookup_id: lookup('b'),
            secret_hash: hash("two"),
            previous_lookup_id: lookup('a'),
            previous_valid_until: t(3),
            at: t(1),
        }]);
}

#[tokio::test]
async fn a_grace_period_longer_than_seven_days_is_rejected() {
    let rotate = RotateKey {
        lookup_id: lookup('b'),
        secret_hash: hash("two"),
        grace: chrono::Duration::days(8),
        at: t(1),
    };
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::Rotate(rotate))
        .await
        .then_expect_error(ApiKeyError::GraceOutOfRange);
}

#[tokio::test]
async fn rotating_a_revoked_key_is_rejected() {
    let rotate = RotateKey {
        lookup_id: lookup('b'),
        secret_hash: hash("two"),
        grace: chrono::Duration::zero(),
        at: t(2),
    };
    KeyTest::with(())
        .given(vec![issued(), ApiKeyEvent::KeyRevoked { reason: None, at: t(1) }])
        .when_async(ApiKeyCommand::Rotate(rotate))
        .await
        .then_expect_error(ApiKeyError::KeyNotActive {
            status: KeyStatus::Revoked,
        });
}

#[tokio::test]
async fn the_seven_day_warning_is_sent_once_when_due() {
    let expires = t(0) + chrono::Duration::days(30);
    let at = expires - chrono::Duration::days(6);
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::CheckExpiry { at })
        .await
        .then_expect_events(vec![ApiKeyEvent::KeyExpiryWarned {
            warning: ExpiryWarning::SevenDays,
            expires_at: expires,
            at,
        }]);
    let warned = ApiKeyEvent::KeyExpiryWarned {
        warning: ExpiryWarning::SevenDays,
        expires_at: expires,
        at,
    };
    KeyTest::with(())
        .given(vec![issued(), warned])
        .when_async(ApiKeyCommand::CheckExpiry {
            at: at + chrono::Duration::hours(1),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn nothing_is_sent_before_a_warning_is_due() {
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::CheckExpiry { at: t(5) })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn after_downtime_only_the_most_urgent_warning_is_sent() {
    let expires = t(0) + chrono::Duration::days(30);
    let at = expires - chrono::Duration::hours(12);
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::CheckExpiry { at })
        .await
        .then_expect_events(vec![ApiKeyEvent::KeyExpiryWarned {
            warning: ExpiryWarning::OneDay,
            expires_at: expires,
            at,
        }]);
}

#[tokio::test]
async fn a_key_past_its_expiry_is_expired_once() {
    let at = t(0) + chrono::Duration::days(31);
    KeyTest::with(())
        .given(vec![issued()])
        .when_async(ApiKeyCommand::CheckExpiry { at })
        .await
        .then_expect_events(vec![ApiKeyEvent::KeyExpired { at }]);
    KeyTest::with(())
        .given(vec![issued(), ApiKeyEvent::KeyExpired { at }])
        .when_async(ApiKeyCommand::CheckExpiry { at })
        .await
        .then_expect_events(vec![]);
}

#[test]
fn replaying_until_an_instant_gives_the_state_of_that_instant() {
    let events = [
        issued(),
        ApiKeyEvent::KeyRenamed {
            name: "Renamed".parse().unwrap(),
            at: t(2),
        },
        ApiKeyEvent::KeyRevoked { reason: None, at: t(4) },
    ];
    let at_3 = ApiKey::replay_until(&events, t(3));
    let key = at_3.issued().unwrap();
    assert_eq!(key.name.as_str(), "Renamed");
    assert_eq!(key.status_at(t(3)), KeyStatus::Active);
    assert!(ApiKey::replay_until(&events, t(0) - chrono::Duration::seconds(1))
        .issued()
        .is_none());
    assert_eq!(
        ApiKey::replay_until(&events, t(5)).issued().unwrap().status_at(t(5)),
        KeyStatus::Revoked
    );
}
