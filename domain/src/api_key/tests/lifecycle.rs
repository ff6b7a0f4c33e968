//! Issue, change, revoke and rotate, given/when/then.

use super::*;

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
