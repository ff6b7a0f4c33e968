use super::*;
use crate::webhook::event_type::EventType;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;

type WebhookTest = TestFramework<Webhook>;

fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0).unwrap()
}

fn sealed(s: &str) -> SealedSecret {
    SealedSecret::new(s.to_owned())
}

fn create() -> CreateWebhook {
    CreateWebhook {
        webhook_id: Uuid::from_u128(7),
        tenant: "acme".parse().unwrap(),
        settings: Settings {
            url: "https://hooks.acme.test/keyledger".parse().unwrap(),
            event_types: EventTypes::parse(&["key.created", "key.revoked"]).unwrap(),
            template_id: None,
            headers: [("x-team".to_owned(), "platform".to_owned())].into(),
            description: "key events to the platform team".to_owned(),
        },
        secret: sealed("sealed-1"),
        at: t(0),
    }
}

fn created() -> WebhookEvent {
    let c = create();
    WebhookEvent::WebhookCreated {
        webhook_id: c.webhook_id,
        tenant: c.tenant,
        settings: c.settings,
        secret: c.secret,
        at: t(0),
    }
}

fn disabled() -> WebhookEvent {
    WebhookEvent::WebhookDisabled {
        reason: DisabledReason::Gone,
        at: t(2),
    }
}

#[test]
fn a_created_subscription_is_active_and_once_deleted_its_id_is_not_reused() {
    WebhookTest::with(())
        .given_no_previous_events()
        .when(WebhookCommand::Create(Box::new(create())))
        .then_expect_events(vec![created()]);
    WebhookTest::with(())
        .given(vec![created()])
        .when(WebhookCommand::Create(Box::new(create())))
        .then_expect_error(WebhookError::AlreadyExists);
    WebhookTest::with(())
        .given(vec![created(), WebhookEvent::WebhookDeleted { at: t(1) }])
        .when(WebhookCommand::Create(Box::new(create())))
        .then_expect_error(WebhookError::AlreadyExists);
    WebhookTest::with(())
        .given(vec![created(), WebhookEvent::WebhookDeleted { at: t(1) }])
        .when(WebhookCommand::Pause { at: t(2) })
        .then_expect_error(WebhookError::NotFound);

    let mut webhook = Webhook::default();
    webhook.apply(created());
    let live = webhook.subscription().unwrap();
    assert_eq!(live.status, Status::Active);
    assert!(live.settings.event_types.matches(EventType::KeyRevoked));
}

#[test]
fn a_change_records_only_what_differs_and_a_change_of_nothing_is_refused() {
    let change = ChangeWebhook {
        url: Some("https://hooks.acme.test/keyledger".parse().unwrap()),
        event_types: Some(EventTypes::All),
        template_id: Some(Some(Uuid::from_u128(9))),
        description: Some("key events to the platform team".to_owned()),
        at: t(1),
        ..Default::default()
    };
    WebhookTest::with(())
        .given(vec![created()])
        .when(WebhookCommand::Change(Box::new(change)))
        .then_expect_events(vec![WebhookEvent::WebhookChanged {
            url: None,
            event_types: Some(EventTypes::All),
            template_id: Some(Some(Uuid::from_u128(9))),
            headers: None,
            description: None,
            at: t(1),
        }]);
    let same = ChangeWebhook {
        headers: Some(create().settings.headers),
        at: t(1),
        ..Default::default()
    };
    WebhookTest::with(())
        .given(vec![created()])
        .when(WebhookCommand::Change(Box::new(same)))
        .then_expect_error(WebhookError::NothingChanged);
}

#[test]
fn pause_and_resume_go_between_active_and_paused_only() {
    let paused = WebhookEvent::WebhookPaused { at: t(1) };
    WebhookTest::with(())
        .given(vec![created()])
        .when(WebhookCommand::Pause { at: t(1) })
        .then_expect_events(vec![paused.clone()]);
    WebhookTest::with(())
        .given(vec![created(), paused.clone()])
        .when(WebhookCommand::Pause { at: t(2) })
        .then_expect_error(WebhookError::AlreadyPaused);
    WebhookTest::with(())
        .given(vec![created(), paused])
        .when(WebhookCommand::Resume { at: t(2) })
        .then_expect_events(vec![WebhookEvent::WebhookResumed { at: t(2) }]);
    WebhookTest::with(())
        .given(vec![created()])
        .when(WebhookCommand::Resume { at: t(2) })
        .then_expect_error(WebhookError::NotPaused);
    WebhookTest::with(())
        .given(vec![created(), disabled()])
        .when(WebhookCommand::Resume { at: t(3) })
        .then_expect_error(WebhookError::IsDisabled);
}

#[test]
fn a_disabled_subscription_is_enabled_by_an_admin_and_is_active_again() {
    WebhookTest::with(())
        .given(vec![created(), WebhookEvent::WebhookPaused { at: t(1) }])
        .when(WebhookCommand::Disable {
            reason: DisabledReason::Gone,
            at: t(2),
        })
        .then_expect_events(vec![disabled()]);
    WebhookTest::with(())
        .given(vec![created(), disabled()])
        .when(WebhookCommand::Disable {
            reason: DisabledReason::Failing { since: t(0) },
            at: t(3),
        })
        .then_expect_error(WebhookError::IsDisabled);
    WebhookTest::with(())
        .given(vec![created()])
        .when(WebhookCommand::Enable { at: t(3) })
        .then_expect_error(WebhookError::NotDisabled);
    WebhookTest::with(())
        .given(vec![created(), disabled()])
        .when(WebhookCommand::Enable { at: t(3) })
        .then_expect_events(vec![WebhookEvent::WebhookEnabled { at: t(3) }]);

    let mut webhook = Webhook::default();
    for e in [created(), disabled()] {
        webhook.apply(e);
    }
    assert_eq!(
        webhook.subscription().unwrap().status,
        Status::Disabled {
            reason: DisabledReason::Gone
        }
    );
    webhook.apply(WebhookEvent::WebhookEnabled { at: t(3) });
    assert_eq!(webhook.subscription().unwrap().status, Status::Active);
}

#[test]
fn a_rotated_secret_keeps_the_previous_one_signing_until_the_grace_ends() {
    let rotated = WebhookEvent::WebhookSecretRotated {
        secret: sealed("sealed-2"),
        previous_until: t(1) + chrono::Duration::hours(24),
        at: t(1),
    };
    WebhookTest::with(())
        .given(vec![created()])
        .when(WebhookCommand::RotateSecret {
            secret: sealed("sealed-2"),
            grace: chrono::Duration::hours(24),
            at: t(1),
        })
        .then_expect_events(vec![rotated.clone()]);
    WebhookTest::with(())
        .given(vec![created()])
        .when(WebhookCommand::RotateSecret {
            secret: sealed("sealed-2"),
            grace: chrono::Duration::days(8),
            at: t(1),
        })
        .then_expect_error(WebhookError::Grace);

    let mut webhook = Webhook::default();
    webhook.apply(created());
    webhook.apply(rotated);
    let live = webhook.subscription().unwrap();
    assert_eq!(live.secret, sealed("sealed-2"));
    assert_eq!(
        live.previous,
        Some((sealed("sealed-1"), t(1) + chrono::Duration::hours(24)))
    );
    assert_eq!(format!("{:?}", live.secret), "SealedSecret(***)");
}

#[test]
fn events_keep_their_stored_shape() {
    let json = serde_json::to_value(disabled()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "WebhookDisabled": { "reason": { "kind": "gone" }, "at": "2026-01-01T02:00:00Z" } })
    );
    let json = serde_json::to_value(created()).unwrap();
    assert_eq!(json["WebhookCreated"]["url"], "https://hooks.acme.test/keyledger");
    assert_eq!(
        json["WebhookCreated"]["event_types"],
        serde_json::json!({ "only": ["key.created", "key.revoked"] })
    );
    let back: WebhookEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, created());
}

#[test]
fn a_removed_template_survives_the_round_trip_through_the_store() {
    for template_id in [None, Some(None), Some(Some(Uuid::from_u128(9)))] {
        let event = WebhookEvent::WebhookChanged {
            url: None,
            event_types: None,
            template_id,
            headers: None,
            description: Some("d".into()),
            at: t(1),
        };
        let stored = serde_json::to_string(&event).unwrap();
        assert_eq!(
            serde_json::from_str::<WebhookEvent>(&stored).unwrap(),
            event,
            "{stored}"
        );
    }
}
