//! Usage alerts: a rule over the rollups fires a `usage.alert` once per breach, which webhooks
//! deliver; it fires again only after the breach has cleared. Rules are validated and kept per
//! tenant.

use super::webhook_delivery::subscribe;
use keyledger_api::operations::alert_rules::evaluate;
use keyledger_tests::receiver::Receiver;
use keyledger_tests::{both, eventually, spawn_upstream, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// `n` forward-auth requests with `key` to the registered endpoint.
async fn requests(app: &TestApp, key: &str, n: usize) {
    let bearer = format!("Bearer {key}");
    for _ in 0..n {
        app.edge_request(
            Method::GET,
            "/auth",
            None,
            &[
                ("authorization", &bearer),
                ("x-original-method", "GET"),
                ("x-original-uri", "/files/1"),
            ],
        )
        .await;
    }
}

/// Judges the rules until the rollups include the traffic and one fires.
async fn fires(app: &TestApp) {
    eventually("an alert fires", || async { evaluate(&app.state).await.unwrap() == 1 }).await;
}

async fn rule(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/alert-rules/{id}")).await.body
}

both!(a_rule_fires_once_per_breach_and_its_alert_is_delivered, fires_once);
async fn fires_once(app: TestApp) -> TestApp {
    let upstream = spawn_upstream().await;
    app.register_endpoint(
        json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "upstream_url": upstream }),
    )
    .await;
    let receiver = Receiver::start([]).await;
    subscribe(&app, &receiver, json!(["usage.alert"])).await;
    let created = app
        .create_key(json!({ "name": "chatty", "rate_limits": { "per_minute": 2 } }))
        .await;
    let (key_id, key) = (created["id"].as_str().unwrap(), created["key"].as_str().unwrap());
    let made = app
        .post(
            "/v1/alert-rules",
            json!({ "name": "chatty is throttled", "metric": "rate_limit_hits", "threshold": 2, "window_minutes": 5, "key_id": key_id }),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let id = made.body["id"].as_str().unwrap().to_owned();
    assert_eq!(made.body["state"], "clear");
    // A tenant-wide rule the same traffic does not breach.
    let quiet = app
        .post(
            "/v1/alert-rules",
            json!({ "name": "flood", "metric": "requests", "threshold": 1000 }),
        )
        .await;
    assert_eq!(quiet.status, StatusCode::CREATED, "{:?}", quiet.body);

    // Two allowed, three refused by the per-minute limit: three hits > 2.
    requests(&app, key, 5).await;
    fires(&app).await;
    let got = receiver.wait_for(1).await;
    let alert = got[0].json();
    assert_eq!(alert["type"], "usage.alert");
    assert_eq!(alert["data"]["name"], "chatty is throttled");
    assert_eq!(alert["data"]["metric"], "rate_limit_hits");
    assert_eq!(alert["data"]["value"], 3.0);
    assert_eq!(alert["data"]["subject"], json!({ "kind": "key", "id": key_id }));
    assert_eq!(rule(&app, &id).await["state"], "breached");
    assert_eq!(rule(&app, &id).await["fired"], 1);

    // Still in breach: judged again, nothing more is sent.
    requests(&app, key, 2).await;
    assert_eq!(evaluate(&app.state).await.unwrap(), 0);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1, "a lasting breach fires once");

    // Ten minutes on the window is empty: cleared. A new breach fires again.
    app.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(evaluate(&app.state).await.unwrap(), 0);
    eventually("cleared", || async { rule(&app, &id).await["state"] == "clear" }).await;
    requests(&app, key, 5).await;
    fires(&app).await;
    receiver.wait_for(2).await;
    assert_eq!(rule(&app, &id).await["fired"], 2);
    assert_eq!(rule(&app, quiet.body["id"].as_str().unwrap()).await["fired"], 0);

    // Deleted: no longer judged or listed.
    let deleted = app.delete_as(&app.token, &format!("/v1/alert-rules/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/v1/alert-rules/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v1/alert-rules").await.body["data"].as_array().unwrap().len(),
        1
    );
    app
}

both!(a_rule_is_refused_saying_why_and_kept_to_its_tenant, refused);
async fn refused(app: TestApp) -> TestApp {
    let key = app.create_key(json!({ "name": "mine" })).await;
    let key_id = key["id"].as_str().unwrap();
    let cases = [
        (
            json!({ "name": "x", "metric": "latency", "threshold": 1 }),
            "unknown metric",
        ),
        (
            json!({ "name": "x", "metric": "requests", "threshold": 1, "window_minutes": 0 }),
            "1 to 1440",
        ),
        (
            json!({ "name": "x", "metric": "error_rate", "threshold": 101 }),
            "threshold",
        ),
        (
            json!({ "name": "x", "metric": "key_expiry", "threshold": 24 }),
            "about a key",
        ),
        (
            json!({ "name": "x", "metric": "requests", "threshold": 1, "key_id": "00000000-0000-0000-0000-000000000001" }),
            "no key",
        ),
        (
            json!({ "name": "x", "metric": "requests", "threshold": 1, "key_id": key_id, "endpoint_id": "e" }),
            "not both",
        ),
    ];
    for (body, why) in cases {
        let answer = app.post("/v1/alert-rules", body.clone()).await;
        assert_eq!(answer.error_code(), "invalid_alert_rule", "{body}");
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{body}: {message}");
    }
    assert_eq!(app.get("/v1/alert-rules").await.body["data"], json!([]));

    // Another tenant neither uses this tenant's key nor sees its rules.
    let made = app
        .post(
            "/v1/alert-rules",
            json!({ "name": "expiring", "metric": "key_expiry", "threshold": 24, "key_id": key_id }),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let other = app
        .token_for("globex", "admin", &["API_MANAGEMENT_READ", "API_MANAGEMENT_WRITE"])
        .await;
    let theirs = app
        .post_as(
            &other,
            "/v1/alert-rules",
            json!({ "name": "x", "metric": "requests", "threshold": 1, "key_id": key_id }),
        )
        .await;
    assert_eq!(theirs.error_code(), "invalid_alert_rule");
    let elsewhere = app
        .post_as(
            &other,
            "/v1/alert-rules",
            json!({ "name": "x", "metric": "requests", "threshold": 1, "tenant": "default" }),
        )
        .await;
    assert_eq!(elsewhere.error_code(), "forbidden");
    assert!(
        elsewhere.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("you cannot act on tenant default"),
        "{:?}",
        elsewhere.body
    );
    assert_eq!(app.get_as(&other, "/v1/alert-rules").await.body["data"], json!([]));
    let id = made.body["id"].as_str().unwrap();
    assert_eq!(
        app.get_as(&other, &format!("/v1/alert-rules/{id}")).await.status,
        StatusCode::NOT_FOUND
    );

    // A key nearing its expiry: fewer hours left than the threshold fires it.
    let expiring = app
        .create_key(json!({ "name": "short-lived", "expires_at": (app.clock_now() + chrono::Duration::hours(20)).to_rfc3339() }))
        .await;
    let soon = app
        .post(
            "/v1/alert-rules",
            json!({ "name": "expires soon", "metric": "key_expiry", "threshold": 24, "key_id": expiring["id"] }),
        )
        .await;
    assert_eq!(soon.status, StatusCode::CREATED, "{:?}", soon.body);
    assert_eq!(
        evaluate(&app.state).await.unwrap(),
        1,
        "only the key with 20 hours left"
    );
    let soon = rule(&app, soon.body["id"].as_str().unwrap()).await;
    assert_eq!(soon["state"], "breached");
    assert!((soon["last_value"].as_f64().unwrap() - 20.0).abs() < 0.1, "{soon}");

    // GraphQL has the same.
    let answer = app
        .graphql(
            Some(&app.token),
            "{ alertRules { data { id name metric keyId state } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        answer["data"]["alertRules"]["data"][0]["metric"], "key_expiry",
        "{answer}"
    );
    app
}
