use super::*;
use crate::webhook::EventType;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;
use serde_json::{json, Value};

fn message() -> Message {
    Message {
        id: "msg_2b1".to_owned(),
        event_type: EventType::KeyRevoked,
        timestamp: Utc.with_ymd_and_hms(2026, 12, 4, 10, 30, 0).unwrap(),
        tenant: "acme".parse().unwrap(),
        data: json!({ "key_id": "k-1", "name": "billing-service", "environment": "live", "scopes": ["FILES_READ", "FILES_WRITE"], "limits": { "per_second": 10 } }),
    }
}

fn body(kind: TemplateKind) -> Value {
    let rendered = render(kind, None, &message()).unwrap();
    assert_eq!(rendered.content_type, "application/json");
    assert_eq!(rendered.limits_broken, [], "{kind:?}");
    serde_json::from_str(&rendered.body).unwrap()
}

const CONTEXT: &str = "tenant acme · 2026-12-04T10:30:00Z · msg_2b1";

#[test]
fn the_default_body_is_the_standard_webhooks_payload() {
    assert_eq!(
        body(TemplateKind::Default),
        json!({
            "type": "key.revoked",
            "timestamp": "2026-12-04T10:30:00.000Z",
            "tenant": "acme",
            "data": { "key_id": "k-1", "name": "billing-service", "environment": "live", "scopes": ["FILES_READ", "FILES_WRITE"], "limits": { "per_second": 10 } },
        })
    );
}

#[test]
fn slack_gets_a_header_the_fields_a_context_line_and_a_text_fallback() {
    assert_eq!(
        body(TemplateKind::Slack),
        json!({
            "text": "API key revoked: billing-service",
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": "API key revoked" } },
                { "type": "section", "fields": [
                    { "type": "mrkdwn", "text": "*environment*\nlive" },
                    { "type": "mrkdwn", "text": "*key_id*\nk-1" },
                    { "type": "mrkdwn", "text": "*name*\nbilling-service" },
                    { "type": "mrkdwn", "text": "*scopes*\nFILES_READ, FILES_WRITE" },
                ] },
                { "type": "context", "elements": [{ "type": "mrkdwn", "text": CONTEXT }] },
            ],
        })
    );
}

#[test]
fn teams_gets_an_adaptive_card_message() {
    assert_eq!(
        body(TemplateKind::Teams),
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "text": "API key revoked: billing-service", "weight": "Bolder", "size": "Medium", "wrap": true },
                        { "type": "FactSet", "facts": [
                            { "title": "environment", "value": "live" },
                            { "title": "key_id", "value": "k-1" },
                            { "title": "name", "value": "billing-service" },
                            { "title": "scopes", "value": "FILES_READ, FILES_WRITE" },
                        ] },
                        { "type": "TextBlock", "text": CONTEXT, "isSubtle": true, "size": "Small", "wrap": true },
                    ],
                },
            }],
        })
    );
}

#[test]
fn discord_gets_content_and_an_embed() {
    assert_eq!(
        body(TemplateKind::Discord),
        json!({
            "content": "API key revoked: billing-service",
            "embeds": [{
                "title": "API key revoked",
                "fields": [
                    { "name": "environment", "value": "live", "inline": true },
                    { "name": "key_id", "value": "k-1", "inline": true },
                    { "name": "name", "value": "billing-service", "inline": true },
                    { "name": "scopes", "value": "FILES_READ, FILES_WRITE", "inline": true },
                ],
                "footer": { "text": CONTEXT },
                "timestamp": "2026-12-04T10:30:00+00:00",
            }],
        })
    );
}

fn custom(text: &str) -> CustomTemplate {
    CustomTemplate::try_from(text.to_owned()).unwrap()
}

#[test]
fn a_custom_template_renders_the_events_fields_as_json_or_as_text() {
    let template = custom(
        r#"{"alert": {{ summary|tojson }}, "key": {{ data.key_id|tojson }}, "id": "{{ id }}", "type": "{{ type }}"}"#,
    );
    let rendered = render(TemplateKind::Custom, Some(&template), &message()).unwrap();
    assert_eq!(rendered.content_type, "application/json");
    assert_eq!(
        rendered.body,
        r#"{"alert": "API key revoked: billing-service", "key": "k-1", "id": "msg_2b1", "type": "key.revoked"}"#
    );
    let text = render(
        TemplateKind::Custom,
        Some(&custom("{{ title }} in {{ tenant }}")),
        &message(),
    )
    .unwrap();
    assert_eq!(
        (text.body.as_str(), text.content_type),
        ("API key revoked in acme", "text/plain; charset=utf-8")
    );
    assert_eq!(
        render(TemplateKind::Custom, None, &message()),
        Err(TemplateError::NoBody)
    );
}

#[test]
fn a_body_that_breaks_a_platforms_limits_is_reported_with_each_limit() {
    let discord = custom(
        r#"{"content": "{% for i in range(2100) %}x{% endfor %}", "embeds": [{% for i in range(11) %}{"title": "t"}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
    );
    let rendered = render(TemplateKind::Custom, Some(&discord), &message()).unwrap();
    let limits: Vec<(&str, &str, usize)> = rendered
        .limits_broken
        .iter()
        .map(|l| (l.platform, l.limit.as_str(), l.actual))
        .collect();
    assert_eq!(
        limits,
        [
            ("discord", "2,000 characters of content", 2100),
            ("discord", "10 embeds", 11)
        ]
    );
    let slack = custom(
        r#"{"blocks": [{% for i in range(51) %}{"type": "divider"}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
    );
    let rendered = render(TemplateKind::Custom, Some(&slack), &message()).unwrap();
    assert_eq!(rendered.limits_broken.len(), 1);
    assert_eq!(rendered.limits_broken[0].limit, "50 blocks");
    let teams = custom(
        r#"{"attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {"text": "{{ "x" * 30000 }}"}}]}"#,
    );
    let rendered = render(TemplateKind::Custom, Some(&teams), &message()).unwrap();
    assert_eq!(rendered.limits_broken[0].platform, "teams");
}

#[test]
fn an_invalid_template_is_refused_with_its_line_and_a_runaway_one_stops() {
    let err = CustomTemplate::try_from("{\n  \"a\": {{ data.key_id }\n}".to_owned()).unwrap_err();
    let TemplateError::Invalid { line, reason } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*line, 2, "{reason}");
    assert!(err.to_string().starts_with("line 2: "), "{err}");
    let runaway = custom("{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}");
    assert!(matches!(
        render(TemplateKind::Custom, Some(&runaway), &message()),
        Err(TemplateError::Render(_) | TemplateError::BodyTooLarge)
    ));
}

type TemplateTest = TestFramework<WebhookTemplate>;

fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0).unwrap()
}

fn new(kind: TemplateKind, body: Option<CustomTemplate>) -> NewTemplate {
    NewTemplate {
        template_id: Uuid::from_u128(3),
        tenant: "acme".parse().unwrap(),
        name: "ops alerts".parse().unwrap(),
        kind,
        body,
        at: t(0),
    }
}

fn create(kind: TemplateKind, body: Option<CustomTemplate>) -> TemplateCommand {
    TemplateCommand::Create(new(kind, body))
}

fn created(kind: TemplateKind, body: Option<CustomTemplate>) -> TemplateEvent {
    TemplateEvent::TemplateCreated(new(kind, body))
}

#[test]
fn a_template_has_a_body_when_it_is_custom_and_only_then() {
    let body = custom("{{ summary }}");
    TemplateTest::with(())
        .given_no_previous_events()
        .when(create(TemplateKind::Custom, Some(body.clone())))
        .then_expect_events(vec![created(TemplateKind::Custom, Some(body.clone()))]);
    TemplateTest::with(())
        .given_no_previous_events()
        .when(create(TemplateKind::Custom, None))
        .then_expect_error(TemplateError::NoBody.into());
    TemplateTest::with(())
        .given_no_previous_events()
        .when(create(TemplateKind::Slack, Some(body.clone())))
        .then_expect_error(TemplateError::BodyNotCustom.into());
    TemplateTest::with(())
        .given(vec![created(TemplateKind::Slack, None)])
        .when(TemplateCommand::Change {
            name: None,
            body: Some(body),
            at: t(1),
        })
        .then_expect_error(TemplateError::BodyNotCustom.into());
}

#[test]
fn a_change_records_what_differs_and_a_deleted_template_stays_gone() {
    let old = custom("{{ summary }}");
    let new = custom("{{ title }}");
    TemplateTest::with(())
        .given(vec![created(TemplateKind::Custom, Some(old.clone()))])
        .when(TemplateCommand::Change {
            name: Some("ops alerts".parse().unwrap()),
            body: Some(new.clone()),
            at: t(1),
        })
        .then_expect_events(vec![TemplateEvent::TemplateChanged {
            name: None,
            body: Some(new),
            at: t(1),
        }]);
    TemplateTest::with(())
        .given(vec![created(TemplateKind::Custom, Some(old.clone()))])
        .when(TemplateCommand::Change {
            name: None,
            body: Some(old.clone()),
            at: t(1),
        })
        .then_expect_error(TemplateAggregateError::NothingChanged);
    let gone = vec![
        created(TemplateKind::Custom, Some(old)),
        TemplateEvent::TemplateDeleted { at: t(2) },
    ];
    TemplateTest::with(())
        .given(gone.clone())
        .when(TemplateCommand::Delete { at: t(3) })
        .then_expect_error(TemplateAggregateError::NotFound);
    TemplateTest::with(())
        .given(gone)
        .when(create(TemplateKind::Slack, None))
        .then_expect_error(TemplateAggregateError::AlreadyExists);
}

#[test]
fn a_stored_payload_reads_back_as_its_message() {
    let m = message();
    let back = Message::from_payload(m.id.clone(), &m.payload()).unwrap();
    assert_eq!(back, m);
    let mut broken = m.payload();
    broken["type"] = "key.deleted".into();
    assert_eq!(Message::from_payload(m.id.clone(), &broken), None);
}
