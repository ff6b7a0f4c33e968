use super::*;
use crate::admin_token::TokenFingerprint;
use crate::key_format::SecretHash;
use crate::webhook::subscription::DisabledReason;
use chrono::TimeZone;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn acme() -> TenantId {
    "acme".parse().unwrap()
}

fn named(name: &str) -> Subject {
    Subject {
        name: Some(name.to_owned()),
        ..Subject::default()
    }
}

#[test]
fn a_revoked_key_is_heard_of_by_its_tenant_with_its_name_and_reason() {
    let event = ApiKeyEvent::KeyRevoked {
        reason: Some("leaked".into()),
        at: at(),
    };
    let notice = of_key(Uuid::from_u128(1), acme(), &event, &named("billing")).unwrap();
    assert_eq!(notice.event_type, EventType::KeyRevoked);
    assert_eq!(notice.audience, Audience::Tenant(acme()));
    assert_eq!(notice.at, at());
    assert_eq!(
        notice.data,
        json!({"key_id": Uuid::from_u128(1), "name": "billing", "reason": "leaked"})
    );
}

#[test]
fn every_key_event_has_its_type_and_none_carries_a_secret_or_lookup_id() {
    let issued: ApiKeyEvent = serde_json::from_value(json!({"KeyIssued": {
        "key_id": Uuid::from_u128(1), "tenant": "acme", "name": "billing", "environment": "live",
        "lookup_id": "AbCdEf012345", "secret_hash": "$pbkdf2-sha256$i=1$c2FsdA$aGFzaA",
        "scopes": ["FILES_READ"], "rate_limits": {}, "ip_rules": {"allow": [], "block": []}, "expires_at": null, "at": at()
    }}))
    .unwrap();
    let cases = [
        (issued, EventType::KeyCreated),
        (
            ApiKeyEvent::KeyExpiryWarned {
                warning: ExpiryWarning::SevenDays,
                expires_at: at(),
                at: at(),
            },
            EventType::KeyExpiring,
        ),
        (ApiKeyEvent::KeyExpired { at: at() }, EventType::KeyExpired),
        (
            ApiKeyEvent::KeyRenamed {
                name: "new".parse().unwrap(),
                at: at(),
            },
            EventType::KeyChanged,
        ),
    ];
    for (event, expected) in cases {
        let notice = of_key(Uuid::from_u128(1), acme(), &event, &Subject::default()).unwrap();
        assert_eq!(notice.event_type, expected);
        let text = notice.data.to_string();
        assert!(!text.contains("AbCdEf012345") && !text.contains("pbkdf2"), "{text}");
        assert_eq!(notice.data["key_id"], json!(Uuid::from_u128(1)));
    }
}

#[test]
fn endpoint_activation_reaches_everyone_when_global_and_one_tenant_when_not() {
    let subject = Subject {
        path: Some("/v1/orders".into()),
        methods: Some(vec!["GET".into()]),
        ..Subject::default()
    };
    let id = Uuid::from_u128(9);
    let global = of_endpoint(
        &EndpointEvent::EndpointActivated {
            endpoint_id: id,
            at: at(),
        },
        &subject,
    )
    .unwrap();
    assert_eq!(
        (global.event_type, global.audience),
        (EventType::EndpointActivated, Audience::Everyone)
    );
    assert_eq!(
        global.data,
        json!({"endpoint_id": id, "path": "/v1/orders", "methods": ["GET"]})
    );
    let one = of_endpoint(
        &EndpointEvent::EndpointDisabledForTenant {
            endpoint_id: id,
            tenant: acme(),
            at: at(),
        },
        &subject,
    )
    .unwrap();
    assert_eq!(
        (one.event_type, one.audience),
        (EventType::EndpointDeactivated, Audience::Tenant(acme()))
    );
    let deprecated = of_endpoint(
        &EndpointEvent::EndpointDeprecated {
            endpoint_id: id,
            sunset: Some(at()),
            at: at(),
        },
        &subject,
    )
    .unwrap();
    assert_eq!(deprecated.data["sunset"], json!("2026-12-04T10:00:00.000Z"));
    assert_eq!(
        of_endpoint(
            &EndpointEvent::EndpointUndeprecated {
                endpoint_id: id,
                at: at()
            },
            &subject
        ),
        None
    );
}

#[test]
fn tokens_are_announced_without_their_secret_and_a_disabled_webhook_with_why() {
    let issued = AdminTokenEvent::AdminTokenIssued {
        token_id: Uuid::from_u128(3),
        tenant: acme(),
        name: "ci".parse().unwrap(),
        permissions: [crate::Permission::ApiManagementRead].into(),
        scopes: crate::ScopeGrant::All,
        expires_at: None,
        fingerprint: TokenFingerprint::from_hex("ab12".into()),
        secret_hash: SecretHash::from_phc("$pbkdf2-sha256$i=1$c2FsdA$aGFzaA".into()),
        at: at(),
    };
    let notice = of_token(Uuid::from_u128(3), acme(), &issued, &Subject::default()).unwrap();
    assert_eq!(notice.event_type, EventType::TokenCreated);
    assert_eq!(
        notice.data,
        json!({"token_id": Uuid::from_u128(3), "name": "ci", "permissions": ["API_MANAGEMENT_READ"]})
    );
    let deleted = AdminTokenEvent::AdminTokenDeleted {
        token_id: Uuid::from_u128(3),
        at: at(),
    };
    let notice = of_token(Uuid::from_u128(3), acme(), &deleted, &named("ci")).unwrap();
    assert_eq!(
        (notice.event_type, &notice.data["name"]),
        (EventType::TokenDeleted, &json!("ci"))
    );

    let subject = Subject {
        url: Some("https://hooks.acme.test/k".into()),
        ..Subject::default()
    };
    let disabled = WebhookEvent::WebhookDisabled {
        reason: DisabledReason::Gone,
        at: at(),
    };
    let notice = of_webhook(Uuid::from_u128(4), acme(), &disabled, &subject).unwrap();
    assert_eq!(notice.event_type, EventType::WebhookDisabled);
    assert_eq!(
        notice.data,
        json!({"webhook_id": Uuid::from_u128(4), "url": "https://hooks.acme.test/k", "reason": {"kind": "gone"}})
    );
    assert_eq!(
        of_webhook(
            Uuid::from_u128(4),
            acme(),
            &WebhookEvent::WebhookPaused { at: at() },
            &subject
        ),
        None
    );
}

#[test]
fn a_fired_alert_is_a_usage_alert_saying_its_rule_and_figures() {
    use crate::webhook::alert::{AlertMetric, AlertRule, AlertSubject, WindowFigures};
    let fired = AlertEvent::AlertFired {
        name: "busy key".parse().unwrap(),
        rule: AlertRule {
            subject: AlertSubject::Key("k-1".into()),
            metric: AlertMetric::Requests,
            threshold: 100.0,
            window_minutes: 5,
        },
        figures: WindowFigures {
            requests: 150,
            errors: 3,
            rate_limited: 0,
            hours_to_expiry: None,
        },
        value: 150.0,
        at: at(),
    };
    let notice = of_alert(Uuid::from_u128(8), acme(), &fired).unwrap();
    assert_eq!(
        (notice.event_type, notice.audience.clone()),
        (EventType::UsageAlert, Audience::Tenant(acme()))
    );
    assert_eq!(notice.data["name"], "busy key");
    assert_eq!(notice.data["subject"], json!({"kind": "key", "id": "k-1"}));
    assert_eq!(notice.data["metric"], "requests");
    assert_eq!(
        (notice.data["value"].clone(), notice.data["threshold"].clone()),
        (json!(150.0), json!(100.0))
    );
    assert_eq!(
        of_alert(Uuid::from_u128(8), acme(), &AlertEvent::AlertCleared { at: at() }),
        None
    );
}
