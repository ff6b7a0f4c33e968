//! The webhook delivery log: each attempt as the receiver saw it, resend and recover, figures;
//! the SSRF guard at send time; a subscription failing for the whole period disabled with an
//! event that the tenant's other subscriptions hear.

use super::webhook_delivery::subscribe;
use keyledger_tests::receiver::{Receiver, Reply};
use keyledger_tests::{both, eventually, fresh_database, start_with, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let answer = app.get(&format!("/v1/webhooks/deliveries?{query}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body["data"].as_array().unwrap().clone()
}

/// Waits until the subscription's latest delivery has `status` (`pending`: after an attempt);
/// returns it with its attempts.
async fn settled(app: &TestApp, webhook_id: &str, status: &str) -> Value {
    eventually(&format!("a {status} delivery"), || async {
        deliveries(app, &format!("webhook_id={webhook_id}"))
            .await
            .first()
            .is_some_and(|d| d["status"] == status && (status != "pending" || d["attempts"].as_i64() >= Some(1)))
    })
    .await;
    let id = deliveries(app, &format!("webhook_id={webhook_id}")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get(&format!("/v1/webhooks/deliveries/{id}")).await.body
}

both!(each_attempt_is_logged_and_a_delivery_can_be_resent, logged);
async fn logged(app: TestApp) -> TestApp {
    let receiver = Receiver::start([Reply::Status(500)]).await;
    let (webhook, _) = subscribe(&app, &receiver, json!(["key.created"])).await;
    app.create_key(json!({ "name": "logged" })).await;
    receiver.wait_for(1).await;
    let pending = settled(&app, &webhook, "pending").await;
    assert_eq!(pending["attempts"], 1);
    assert_eq!(pending["last_status_code"], 500);
    assert!(pending["next_attempt_at"].is_string(), "{pending}");
    app.clock.advance(chrono::Duration::seconds(6));
    receiver.wait_for(2).await;
    let delivery = settled(&app, &webhook, "delivered").await;
    let log = delivery["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2, "{delivery}");
    assert_eq!(
        (log[0]["status_code"].clone(), log[0]["delivered"].clone()),
        (json!(500), json!(false))
    );
    assert_eq!(log[0]["response_body"], "answered 500");
    assert!(log[0]["next_attempt_at"].is_string());
    assert_eq!(
        (log[1]["status_code"].clone(), log[1]["delivered"].clone()),
        (json!(200), json!(true))
    );
    assert!(log[1]["next_attempt_at"].is_null());
    assert_eq!(log[1]["url"], receiver.url.as_str());
    assert_eq!(log[1]["request_body"].as_str().unwrap(), receiver.received()[1].body);
    assert_eq!(delivery["message"]["type"], "key.created");
    assert_eq!(delivery["event_type"], "key.created");

    // Filters: by status and type; bad ones refused.
    let id = delivery["id"].as_str().unwrap();
    assert_eq!(deliveries(&app, "status=delivered").await.len(), 1);
    assert!(deliveries(&app, "status=failed").await.is_empty());
    assert_eq!(deliveries(&app, "event_type=key.created").await.len(), 1);
    let bad = app.get("/v1/webhooks/deliveries?status=lost").await;
    assert_eq!(bad.error_code(), "invalid_status");
    let bad = app.get("/v1/webhooks/deliveries?event_type=key.deleted").await;
    assert_eq!(bad.error_code(), "invalid_query");

    // Resent: the same webhook-id again.
    let resent = app
        .post(&format!("/v1/webhooks/deliveries/{id}/resend"), json!({}))
        .await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{:?}", resent.body);
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].header("webhook-id"), id);
    let delivery = settled(&app, &webhook, "delivered").await;
    assert_eq!(delivery["attempt_log"].as_array().unwrap().len(), 3);

    // Figures.
    let stats = app.get(&format!("/v1/webhooks/stats?webhook_id={webhook}")).await;
    assert_eq!(stats.status, StatusCode::OK, "{:?}", stats.body);
    let day = &stats.body["periods"][0];
    assert_eq!(day["period"], "24h");
    assert_eq!(
        (day["deliveries"].clone(), day["delivered"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(day["success_rate"], 1.0);
    assert_eq!(day["attempts"], 3);
    assert!(day["p95_duration_ms"].is_number(), "{day}");

    // The same over GraphQL.
    let answer = app
        .graphql(
            Some(&app.token),
            "query($w: String) { webhookDeliveries(webhookId: $w, status: \"delivered\") { data { id attempts } } \
             webhookStats(webhookId: $w) { periods { period delivered successRate } } }",
            json!({ "w": webhook }),
        )
        .await;
    assert_eq!(answer["data"]["webhookDeliveries"]["data"][0]["id"], id, "{answer}");
    assert_eq!(answer["data"]["webhookStats"]["periods"][2]["period"], "30d");
    let answer = app
        .graphql(
            Some(&app.token),
            "mutation($id: String!) { resendWebhookDelivery(id: $id) { id status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(answer["data"]["resendWebhookDelivery"]["status"], "pending", "{answer}");
    receiver.wait_for(4).await;

    // Another tenant sees none of it.
    let other = app.token_for("globex", "reader", &["API_MANAGEMENT_READ"]).await;
    let theirs = app.get_as(&other, "/v1/webhooks/deliveries").await;
    assert_eq!(theirs.body["data"], json!([]));
    let theirs = app.get_as(&other, &format!("/v1/webhooks/deliveries/{id}")).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    app
}

both!(
    a_disabled_subscriptions_failed_deliveries_are_recovered_once_enabled,
    recovered
);
async fn recovered(app: TestApp) -> TestApp {
    let receiver = Receiver::start([Reply::Status(410)]).await;
    let (webhook, _) = subscribe(&app, &receiver, json!(["key.created"])).await;
    app.create_key(json!({ "name": "first" })).await;
    receiver.wait_for(1).await;
    eventually("disabled", || async {
        app.get(&format!("/v1/webhooks/{webhook}")).await.body["status"] == "disabled"
    })
    .await;
    let since = app.clock_now() - chrono::Duration::minutes(1);
    app.create_key(json!({ "name": "while-disabled" })).await;
    eventually("the second delivery", || async {
        deliveries(&app, &format!("webhook_id={webhook}")).await.len() == 2
    })
    .await;
    let failed = settled(&app, &webhook, "failed").await;
    assert_eq!(failed["last_error"], "the subscription was disabled");
    assert_eq!(failed["attempts"], 0);

    let path = format!(
        "/v1/webhooks/{webhook}/recover?since={}",
        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let refused = app.post(&path, json!({})).await;
    assert_eq!(refused.error_code(), "conflict", "enable it first");
    let enabled = app.post(&format!("/v1/webhooks/{webhook}/enable"), json!({})).await;
    assert_eq!(enabled.status, StatusCode::OK);
    let recovered = app.post(&path, json!({})).await;
    assert_eq!(recovered.status, StatusCode::ACCEPTED, "{:?}", recovered.body);
    assert_eq!(
        recovered.body["recovered"], 2,
        "the 410'd one and the one made while disabled"
    );
    let got = receiver.wait_for(3).await;
    let names: Vec<Value> = got[1..].iter().map(|r| r.json()["data"]["name"].clone()).collect();
    assert!(
        names.contains(&json!("first")) && names.contains(&json!("while-disabled")),
        "{names:?}"
    );
    let bad = app
        .post(&format!("/v1/webhooks/{webhook}/recover?since=yesterday"), json!({}))
        .await;
    assert_eq!(bad.error_code(), "invalid_query");
    app
}

both!(
    a_subscription_failing_for_the_whole_period_is_disabled_and_others_hear_of_it,
    failing_long
);
async fn failing_long(app: TestApp) -> TestApp {
    let broken = Receiver::start(std::iter::repeat_n(Reply::Status(503), 20)).await;
    let watcher = Receiver::start([]).await;
    let (webhook, _) = subscribe(&app, &broken, json!(["key.created"])).await;
    subscribe(&app, &watcher, json!(["webhook.disabled"])).await;
    app.create_key(json!({ "name": "unlucky" })).await;
    broken.wait_for(1).await;
    // Four days on, the retry fails too; the subscription is still on.
    app.clock.advance(chrono::Duration::days(4));
    broken.wait_for(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        app.get(&format!("/v1/webhooks/{webhook}")).await.body["status"],
        "active"
    );
    // Past five days of nothing but failures, it is disabled.
    app.clock
        .advance(chrono::Duration::days(1) + chrono::Duration::hours(2));
    broken.wait_for(3).await;
    eventually("disabled after five days", || async {
        app.get(&format!("/v1/webhooks/{webhook}")).await.body["status"] == "disabled"
    })
    .await;
    let disabled = app.get(&format!("/v1/webhooks/{webhook}")).await.body;
    assert_eq!(disabled["disabled"]["kind"], "failing", "{disabled}");
    let heard = watcher.wait_for(1).await;
    let body = heard[0].json();
    assert_eq!(body["type"], "webhook.disabled");
    assert_eq!(body["data"]["webhook_id"], webhook.as_str());
    assert_eq!(body["data"]["url"], broken.url.as_str());
    assert_eq!(body["data"]["reason"]["kind"], "failing");
    app
}

/// Without an allow-list, loopback and the metadata address are refused at send time, also
/// behind a name that resolves to them; the receiver never hears a thing.
async fn guarded(backend: Backend) {
    let Some(db) = fresh_database(backend).await else {
        return;
    };
    let app = start_with(db, Default::default(), |c| c.serve.webhook_allow_cidrs.clear()).await;
    let receiver = Receiver::start([]).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let cases = [
        (format!("http://localhost:{port}/hooks"), "a loopback address"),
        (format!("http://127.0.0.1:{port}/hooks"), "a loopback address"),
        (
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "a link-local address",
        ),
        ("http://[::1]:9/hooks".to_owned(), "a loopback address"),
    ];
    let mut webhooks = Vec::new();
    for (url, _) in &cases {
        let created = app
            .post("/v1/webhooks", json!({ "url": url, "event_types": ["key.created"] }))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        webhooks.push(created.body["id"].as_str().unwrap().to_owned());
    }
    app.create_key(json!({ "name": "ssrf" })).await;
    for (webhook, (url, range)) in webhooks.iter().zip(&cases) {
        let delivery = settled(&app, webhook, "pending").await;
        let attempt = &delivery["attempt_log"][0];
        let error = attempt["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(range) && error.contains("--webhook-allow-cidrs"),
            "{url}: {error}"
        );
        assert!(attempt["status_code"].is_null());
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty(), "a blocked address was reached");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_addresses_are_refused_at_send_time_sqlite() {
    guarded(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_addresses_are_refused_at_send_time_postgres() {
    guarded(Backend::Postgres).await;
}

both!(finished_deliveries_leave_the_log_after_its_retention, retention);
async fn retention(app: TestApp) -> TestApp {
    let fine = Receiver::start([]).await;
    let failing = Receiver::start([Reply::Status(500)]).await;
    let (fine_hook, _) = subscribe(&app, &fine, json!(["key.created"])).await;
    let (failing_hook, _) = subscribe(&app, &failing, json!(["key.created"])).await;
    app.create_key(json!({ "name": "kept or not" })).await;
    let delivered = settled(&app, &fine_hook, "delivered").await;
    let pending = settled(&app, &failing_hook, "pending").await;
    let horizon = (app.clock_now() + chrono::Duration::minutes(1)).timestamp_millis();
    let forgotten = keyledger_projections::dispatch::deliveries::forget_before(&app.state.db, horizon)
        .await
        .unwrap();
    assert_eq!(forgotten, 1, "only the finished delivery");
    let left = deliveries(&app, "").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], pending["id"]);
    let gone = app
        .get(&format!(
            "/v1/webhooks/deliveries/{}",
            delivered["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let attempts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_attempts WHERE delivery_id = $1")
        .bind(delivered["id"].as_str().unwrap())
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(attempts, 0, "its attempts went with it");
    app
}

both!(what_cannot_be_resent_or_filtered_is_refused_saying_why, refusals);
async fn refusals(app: TestApp) -> TestApp {
    let receiver = Receiver::start([Reply::Status(410)]).await;
    let (webhook, _) = subscribe(&app, &receiver, json!(["key.created"])).await;
    app.create_key(json!({ "name": "gone" })).await;
    let failed = settled(&app, &webhook, "failed").await;
    let id = failed["id"].as_str().unwrap();
    // Its subscription was disabled by the 410: a resend would fail at once.
    eventually("disabled", || async {
        app.get(&format!("/v1/webhooks/{webhook}")).await.body["status"] == "disabled"
    })
    .await;
    let resent = app
        .post(&format!("/v1/webhooks/deliveries/{id}/resend"), json!({}))
        .await;
    assert_eq!(resent.error_code(), "conflict");
    assert!(
        resent.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("enable it first"),
        "{:?}",
        resent.body
    );

    // A held delivery says why it waits.
    let other = Receiver::start([]).await;
    let (paused, _) = subscribe(&app, &other, json!(["key.created"])).await;
    app.post(&format!("/v1/webhooks/{paused}/pause"), json!({})).await;
    app.create_key(json!({ "name": "held" })).await;
    eventually("held", || async {
        deliveries(&app, &format!("webhook_id={paused}&status=held"))
            .await
            .len()
            == 1
    })
    .await;
    let held = deliveries(&app, &format!("webhook_id={paused}")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resent = app
        .post(&format!("/v1/webhooks/deliveries/{held}/resend"), json!({}))
        .await;
    assert_eq!(resent.error_code(), "conflict");
    assert!(
        resent.body["error"]["message"].as_str().unwrap().contains("paused"),
        "{:?}",
        resent.body
    );

    // A deleted subscription's deliveries (the 410'd one, and the one made while it was
    // disabled) can still be filtered; a malformed id is refused.
    app.delete_as(&app.token, &format!("/v1/webhooks/{webhook}")).await;
    assert_eq!(deliveries(&app, &format!("webhook_id={webhook}")).await.len(), 2);
    let stats = app.get(&format!("/v1/webhooks/stats?webhook_id={webhook}")).await;
    assert_eq!(stats.body["periods"][0]["failed"], 2, "{:?}", stats.body);
    let bad = app.get("/v1/webhooks/deliveries?webhook_id=not-a-uuid").await;
    assert_eq!(bad.error_code(), "invalid_query");

    // Bodies that hold only options may be left out.
    let rotated = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/webhooks/{paused}/rotate-secret"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    assert!(rotated.body["secret"].as_str().unwrap().starts_with("whsec_"));
    let template = app
        .post("/v1/webhook-templates", json!({ "name": "plain", "kind": "default" }))
        .await;
    let tested = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/webhook-templates/{}/test", template.body["id"].as_str().unwrap()),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{:?}", tested.body);
    assert_eq!(tested.body["event_type"], "key.created");
    app
}
