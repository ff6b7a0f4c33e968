//! Webhook subscriptions over REST and GraphQL: the secret shown once and sealed at rest,
//! validation that says why, pause/resume/enable, rotation, tenant isolation and the audit trail.

use keyledger_tests::{both, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn subscribe(app: &TestApp, body: Value) -> Value {
    let answer = app.post("/v1/webhooks", body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    answer.body
}

both!(a_subscription_shows_its_secret_once_and_keeps_it_sealed, created_once);
async fn created_once(app: TestApp) -> TestApp {
    let created = subscribe(
        &app,
        json!({ "url": "https://hooks.example.com/keyledger", "event_types": ["key.revoked", "key.created"],
                "headers": { "X-Team": "platform" }, "description": "key events" }),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created["event_types"], json!(["key.created", "key.revoked"]));
    assert_eq!(created["headers"], json!({ "x-team": "platform" }));
    assert_eq!(created["status"], "active");
    let id = created["id"].as_str().unwrap().to_owned();
    let read = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.body.get("secret").is_none(), "shown once: {:?}", read.body);

    // At rest only sealed: the event store does not hold it, and this node's key opens it.
    let payload: String = sqlx::query_scalar("SELECT CAST(payload AS TEXT) FROM events WHERE aggregate_id = $1")
        .bind(&id)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(!payload.contains(&secret["whsec_".len()..]), "{payload}");
    let sealed: Value = serde_json::from_str(&payload).unwrap();
    let sealed = keyledger_domain::webhook::subscription::SealedSecret::new(
        sealed["WebhookCreated"]["secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(app.state.bus.sealer().unwrap().open(&sealed).unwrap().shown(), secret);

    let rotated = app.post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let new = rotated.body["secret"].as_str().unwrap();
    assert!(new.starts_with("whsec_") && new != secret);
    assert!(rotated.body["secret_rotated_at"].is_string());
    let too_long = app
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            json!({ "grace_seconds": 700_000 }),
        )
        .await;
    assert_eq!(too_long.error_code(), "invalid_grace_period");
    app
}

both!(a_subscription_is_refused_saying_why_and_nothing_is_made, refused);
async fn refused(app: TestApp) -> TestApp {
    let cases = [
        (
            json!({ "url": "ftp://example.com/", "event_types": ["*"] }),
            "http or https",
        ),
        (
            json!({ "url": "https://user:pw@example.com/", "event_types": ["*"] }),
            "user name or password",
        ),
        (
            json!({ "url": "https://example.com/", "event_types": ["key.deleted"] }),
            "unknown event type",
        ),
        (
            json!({ "url": "https://example.com/", "event_types": [] }),
            "at least one event type",
        ),
        (
            json!({ "url": "https://example.com/", "event_types": ["*"], "headers": { "webhook-signature": "x" } }),
            "set by Keyledger",
        ),
        (
            json!({ "url": "https://example.com/", "event_types": ["*"], "headers": { "bad header": "x" } }),
            "not a header name",
        ),
        (
            json!({ "url": "https://example.com/", "event_types": ["*"], "template_id": "00000000-0000-0000-0000-000000000000" }),
            "no webhook template",
        ),
    ];
    for (body, says) in cases {
        let answer = app.post("/v1/webhooks", body).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::BAD_REQUEST, "invalid_webhook")
        );
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(app.get("/v1/webhooks").await.body["data"], json!([]));
    app
}

both!(
    pause_resume_enable_and_changes_follow_the_subscriptions_status,
    lifecycle
);
async fn lifecycle(app: TestApp) -> TestApp {
    let template = app
        .post("/v1/webhook-templates", json!({ "name": "chat", "kind": "slack" }))
        .await;
    let created = subscribe(
        &app,
        json!({ "url": "https://hooks.example.com/a", "event_types": ["*"] }),
    )
    .await;
    let path = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());
    let paused = app.post(&format!("{path}/pause"), json!({})).await;
    assert_eq!(paused.body["status"], "paused");
    let again = app.post(&format!("{path}/pause"), json!({})).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(
        app.post(&format!("{path}/resume"), json!({})).await.body["status"],
        "active"
    );
    let enable = app.post(&format!("{path}/enable"), json!({})).await;
    assert_eq!(enable.status, StatusCode::CONFLICT, "not disabled");

    let changed = app
        .patch(&path, json!({ "url": "https://hooks.example.com/b", "template_id": template.body["id"], "event_types": ["usage.alert"] }))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(changed.body["url"], "https://hooks.example.com/b");
    assert_eq!(changed.body["template_id"], template.body["id"]);
    assert_eq!(changed.body["event_types"], json!(["usage.alert"]));
    let back = app.patch(&path, json!({ "template_id": null })).await;
    assert_eq!(
        back.body["template_id"],
        Value::Null,
        "null goes back to the default body"
    );
    let same = app.patch(&path, json!({ "url": "https://hooks.example.com/b" })).await;
    assert_eq!(
        (same.status, same.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_webhook")
    );

    assert_eq!(app.delete_as(&app.token, &path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
    app
}

both!(
    tenants_see_only_their_own_subscriptions_and_every_change_is_audited,
    isolation
);
async fn isolation(app: TestApp) -> TestApp {
    let theirs = app
        .token_for(
            "globex",
            "globex admin",
            &["API_MANAGEMENT_READ", "API_MANAGEMENT_WRITE"],
        )
        .await;
    let mine = subscribe(
        &app,
        json!({ "url": "https://hooks.example.com/mine", "event_types": ["*"] }),
    )
    .await;
    let path = format!("/v1/webhooks/{}", mine["id"].as_str().unwrap());
    assert_eq!(app.get_as(&theirs, &path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete_as(&theirs, &path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.post_as(&theirs, &format!("{path}/pause"), json!({})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get_as(&theirs, "/v1/webhooks").await.body["data"], json!([]));
    let my_template = app
        .post("/v1/webhook-templates", json!({ "name": "t", "kind": "discord" }))
        .await;
    let borrowed = app
        .post_as(
            &theirs,
            "/v1/webhooks",
            json!({ "url": "https://globex.example/", "event_types": ["*"], "template_id": my_template.body["id"] }),
        )
        .await;
    assert_eq!(
        borrowed.error_code(),
        "invalid_webhook",
        "another tenant's template cannot be used"
    );

    let graphql = app
        .graphql(
            Some(&app.token),
            "mutation($t: String!) { createWebhook(input: { url: \"https://hooks.example.com/gql\", eventTypes: [\"key.created\"], templateId: $t, headers: { x_team: \"platform\" } }) { id secret status headers templateId } }",
            json!({ "t": my_template.body["id"] }),
        )
        .await;
    let created = &graphql["data"]["createWebhook"];
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"), "{graphql}");
    assert_eq!(created["headers"], json!({ "x_team": "platform" }));
    let untemplated = app
        .graphql(
            Some(&app.token),
            "mutation($id: String!) { updateWebhook(id: $id, input: { templateId: null }) { templateId } }",
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(
        untemplated["data"]["updateWebhook"]["templateId"],
        Value::Null,
        "{untemplated}"
    );
    let paused = app
        .graphql(
            Some(&app.token),
            "mutation($id: String!) { pauseWebhook(id: $id) { status } }",
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(paused["data"]["pauseWebhook"]["status"], "paused", "{paused}");

    assert_eq!(
        app.audit_actions("default", "Webhook").await,
        ["WebhookPaused", "WebhookChanged", "WebhookCreated", "WebhookCreated"]
    );
    app
}
