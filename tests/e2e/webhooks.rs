//! Webhook templates over REST: each kind, refusals that say why, the rendered sample with the
//! limits it breaks, tenant isolation, and the audit trail.

use keyledger_tests::{both, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn create(app: &TestApp, body: Value) -> Value {
    let answer = app.post("/v1/webhook-templates", body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    answer.body
}

both!(templates_of_every_kind_render_a_sample_event, every_kind);
async fn every_kind(app: TestApp) -> TestApp {
    for kind in ["default", "slack", "teams", "discord"] {
        let created = create(&app, json!({ "name": format!("{kind} notices"), "kind": kind })).await;
        assert_eq!(
            (created["kind"].as_str(), created["body"].clone()),
            (Some(kind), Value::Null)
        );
        let id = created["id"].as_str().unwrap();
        let test = app
            .post(
                &format!("/v1/webhook-templates/{id}/test"),
                json!({ "event_type": "key.revoked" }),
            )
            .await;
        assert_eq!(test.status, StatusCode::OK, "{:?}", test.body);
        assert_eq!(test.body["content_type"], "application/json");
        assert_eq!(test.body["limits_broken"], json!([]));
        let sent: Value = serde_json::from_str(test.body["body"].as_str().unwrap()).unwrap();
        match kind {
            "default" => {
                assert_eq!(sent["type"], "key.revoked");
                assert_eq!(sent["tenant"], "default");
                assert_eq!(sent["data"]["name"], "billing-service");
            }
            "slack" => {
                assert_eq!(sent["text"], "API key revoked: billing-service");
                assert_eq!(sent["blocks"][0]["text"]["text"], "API key revoked");
            }
            "teams" => assert_eq!(
                sent["attachments"][0]["contentType"],
                "application/vnd.microsoft.card.adaptive"
            ),
            _ => assert_eq!(sent["content"], "API key revoked: billing-service"),
        }
    }
    let custom = create(
        &app,
        json!({ "name": "pager", "kind": "custom", "body": "{\"text\": {{ summary|tojson }}, \"key\": {{ data.key_id|tojson }}}" }),
    )
    .await;
    let id = custom["id"].as_str().unwrap();
    let test = app.post(&format!("/v1/webhook-templates/{id}/test"), json!({})).await;
    let sent: Value = serde_json::from_str(test.body["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent["text"], "API key created: billing-service",
        "key.created by default"
    );
    assert_eq!(test.body["event_type"], "key.created");
    let listed = app.get("/v1/webhook-templates").await;
    let names: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "pager",
            "discord notices",
            "teams notices",
            "slack notices",
            "default notices"
        ],
        "newest first"
    );
    app
}

both!(a_template_is_refused_saying_why_and_changes_nothing, refused);
async fn refused(app: TestApp) -> TestApp {
    let cases = [
        (
            json!({ "name": "x", "kind": "custom", "body": "{\n {{ data.key_id }\n}" }),
            "line 2: ",
        ),
        (json!({ "name": "x", "kind": "custom" }), "needs a body"),
        (
            json!({ "name": "x", "kind": "slack", "body": "{{ summary }}" }),
            "only a custom template",
        ),
    ];
    for (body, says) in cases {
        let answer = app.post("/v1/webhook-templates", body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.error_code(), "invalid_template");
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    let answer = app
        .post("/v1/webhook-templates", json!({ "name": "x", "kind": "telegram" }))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/v1/webhook-templates").await.body["data"],
        json!([]),
        "nothing made"
    );

    let custom = create(&app, json!({ "name": "c", "kind": "custom", "body": "{{ title }}" })).await;
    let path = format!("/v1/webhook-templates/{}", custom["id"].as_str().unwrap());
    let same = app.patch(&path, json!({ "body": "{{ title }}" })).await;
    assert_eq!(
        (same.status, same.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_template")
    );
    let changed = app
        .patch(&path, json!({ "name": "renamed", "body": "{{ summary }}" }))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(
        (changed.body["name"].as_str(), changed.body["body"].as_str()),
        (Some("renamed"), Some("{{ summary }}"))
    );
    app
}

both!(a_body_breaking_a_platform_limit_is_reported_by_the_test, limits);
async fn limits(app: TestApp) -> TestApp {
    let body = r#"{"content": "{{ "x" * 2500 }}", "embeds": []}"#;
    let created = create(&app, json!({ "name": "too long", "kind": "custom", "body": body })).await;
    let test = app
        .post(
            &format!("/v1/webhook-templates/{}/test", created["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(
        test.body["limits_broken"],
        json!([{ "platform": "discord", "limit": "2,000 characters of content", "actual": 2500 }])
    );
    app
}

both!(
    tenants_see_only_their_own_templates_and_every_change_is_audited,
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
    let mine = create(&app, json!({ "name": "ops", "kind": "slack" })).await;
    let path = format!("/v1/webhook-templates/{}", mine["id"].as_str().unwrap());
    assert_eq!(app.get_as(&theirs, &path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete_as(&theirs, &path).await.status, StatusCode::NOT_FOUND);
    let test = app.post_as(&theirs, &format!("{path}/test"), json!({})).await;
    assert_eq!(test.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get_as(&theirs, "/v1/webhook-templates").await.body["data"],
        json!([])
    );
    let own = app
        .post_as(
            &theirs,
            "/v1/webhook-templates",
            json!({ "name": "ops", "kind": "discord" }),
        )
        .await;
    assert_eq!(
        (own.status, own.body["tenant"].as_str()),
        (StatusCode::CREATED, Some("globex"))
    );

    assert_eq!(app.delete_as(&app.token, &path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.audit_actions("default", "Template").await,
        ["TemplateDeleted", "TemplateCreated"]
    );
    app
}

both!(templates_work_the_same_over_graphql, over_graphql);
async fn over_graphql(app: TestApp) -> TestApp {
    let created = app
        .graphql(
            Some(&app.token),
            "mutation($input: CreateWebhookTemplateInput!) { createWebhookTemplate(input: $input) { id kind name } }",
            json!({ "input": { "name": "team chat", "kind": "DISCORD" } }),
        )
        .await;
    let template = &created["data"]["createWebhookTemplate"];
    assert_eq!(template["kind"], "discord", "{created}");
    let tested = app
        .graphql(
            Some(&app.token),
            "mutation($id: String!) { testWebhookTemplate(id: $id, eventType: \"usage.alert\") { eventType body limitsBroken { platform } } }",
            json!({ "id": template["id"] }),
        )
        .await;
    let body: Value = serde_json::from_str(tested["data"]["testWebhookTemplate"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["content"], "Usage alert: billing-service errors", "{tested}");
    let listed = app
        .graphql(Some(&app.token), "{ webhookTemplates { data { name } } }", json!({}))
        .await;
    assert_eq!(
        listed["data"]["webhookTemplates"]["data"],
        json!([{ "name": "team chat" }])
    );
    let refused = app
        .graphql(
            Some(&app.token),
            "mutation { createWebhookTemplate(input: { name: \"bad\", kind: CUSTOM, body: \"{{ x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "invalid_template",
        "{refused}"
    );
    app
}

both!(a_template_not_saved_is_previewed_and_nothing_is_stored, preview);
async fn preview(app: TestApp) -> TestApp {
    let events = app.event_count().await;
    let slack = app
        .post(
            "/v1/webhook-templates/preview",
            json!({ "kind": "slack", "event_type": "key.revoked" }),
        )
        .await;
    assert_eq!(slack.status, StatusCode::OK, "{:?}", slack.body);
    assert_eq!(slack.body["event_type"], "key.revoked");
    let body: Value = serde_json::from_str(slack.body["body"].as_str().unwrap()).unwrap();
    assert!(body["blocks"].is_array(), "{body}");

    let long = r#"{"content": "{{ "x" * 2500 }}"}"#;
    let over = app
        .post(
            "/v1/webhook-templates/preview",
            json!({ "kind": "custom", "body": long }),
        )
        .await;
    assert_eq!(over.body["limits_broken"][0]["platform"], "discord", "{:?}", over.body);

    for (bad, code) in [
        (json!({ "kind": "custom", "body": "{{ x" }), "invalid_template"),
        (json!({ "kind": "custom" }), "invalid_template"),
        (json!({ "kind": "slack", "event_type": "key.nothing" }), "invalid_body"),
    ] {
        let refused = app.post("/v1/webhook-templates/preview", bad.clone()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(refused.error_code(), code, "{bad}: {:?}", refused.body);
    }
    let graphql = app
        .graphql(
            Some(&app.token),
            "mutation { previewWebhookTemplate(input: { kind: TEAMS }) { contentType body } }",
            json!({}),
        )
        .await;
    assert_eq!(
        graphql["data"]["previewWebhookTemplate"]["contentType"], "application/json",
        "{graphql}"
    );
    assert_eq!(app.event_count().await, events, "a preview stores nothing");
    let templates = app.get("/v1/webhook-templates").await;
    assert_eq!(templates.body["data"], json!([]));
    app
}
