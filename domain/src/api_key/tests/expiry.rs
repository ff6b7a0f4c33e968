//! Expiry warnings, expiry, and the state as of an instant.

use super::*;

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
