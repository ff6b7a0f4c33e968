//! Webhook deliveries to real local receivers: signed per Standard Webhooks (checked by the
//! reference implementation), templates applied, retried on the schedule with the test clock,
//! 410 disabling, redirects not followed, paused subscriptions held.

use keyledger_tests::receiver::{Receiver, Reply};
use keyledger_tests::{both, eventually, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Subscribes `receiver` to `event_types`; returns the subscription's id and secret.
pub async fn subscribe(app: &TestApp, receiver: &Receiver, event_types: Value) -> (String, String) {
    let created = app
        .post(
            "/v1/webhooks",
            json!({ "url": receiver.url, "event_types": event_types, "headers": { "X-Team": "platform" } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    (
        created.body["id"].as_str().unwrap().to_owned(),
        created.body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn status_of(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/webhooks/{id}")).await.body
}

both!(
    an_event_is_delivered_signed_with_the_subscription_secret,
    delivered_signed
);
async fn delivered_signed(app: TestApp) -> TestApp {
    let receiver = Receiver::start([]).await;
    let (_, secret) = subscribe(&app, &receiver, json!(["key.created", "key.revoked"])).await;
    let key = app.create_key(json!({ "name": "billing-service" })).await;
    let got = receiver.wait_for(1).await;
    let hook = &got[0];
    hook.verify(&secret)
        .expect("the reference library verifies the signature");
    assert!(hook.header("webhook-id").starts_with("msg_"), "{:?}", hook.headers);
    assert_eq!(hook.header("content-type"), "application/json");
    assert_eq!(hook.header("x-team"), "platform");
    assert!(hook.header("user-agent").starts_with("Keyledger-Webhooks/"));
    let body = hook.json();
    assert_eq!(body["type"], "key.created");
    assert_eq!(body["tenant"], "default");
    assert_eq!(body["data"]["key_id"], key["id"]);
    assert_eq!(body["data"]["name"], "billing-service");
    assert!(body["data"].get("secret_hash").is_none() && !hook.body.contains("pbkdf2"));

    // A type it does not listen to is not sent; one it does, with the key's name.
    let id = key["id"].as_str().unwrap();
    let changed = app
        .patch(&format!("/v1/keys/{id}"), json!({ "scopes": ["FILES_READ"] }))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    let revoked = app
        .post(&format!("/v1/keys/{id}/revoke"), json!({ "reason": "leaked" }))
        .await;
    assert!(revoked.status.is_success(), "{:?}", revoked.body);
    let got = receiver.wait_for(2).await;
    let body = got[1].json();
    assert_eq!(body["type"], "key.revoked");
    assert_eq!(body["data"]["name"], "billing-service");
    assert_eq!(body["data"]["reason"], "leaked");
    assert_ne!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2, "key.changed is not subscribed to");
    app
}

both!(during_a_rotation_both_secrets_sign, rotation);
async fn rotation(app: TestApp) -> TestApp {
    let receiver = Receiver::start([]).await;
    let (id, old) = subscribe(&app, &receiver, json!(["*"])).await;
    let rotated = app.post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({})).await;
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    app.create_key(json!({ "name": "rotating" })).await;
    let got = receiver.wait_for(1).await;
    got[0].verify(&new).expect("the new secret verifies");
    got[0]
        .verify(&old)
        .expect("the old secret verifies during the grace period");
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);

    // Once the grace period is over, only the new one signs.
    let rotated = app
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            json!({ "grace_seconds": 0 }),
        )
        .await;
    let newest = rotated.body["secret"].as_str().unwrap().to_owned();
    app.create_key(json!({ "name": "rotated" })).await;
    let got = receiver.wait_for(2).await;
    got[1].verify(&newest).expect("the newest secret verifies");
    assert!(got[1].verify(&new).is_err(), "the replaced secret no longer signs");
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 1);
    app
}

/// Waits until the pending delivery has `n` attempts recorded. A receiver's answer comes before
/// the dispatcher records it: a test clock moved in between moves the retry it schedules too.
async fn attempts_recorded(app: &TestApp, n: i64) {
    eventually("the attempt recorded", || async {
        app.get("/v1/webhooks/deliveries?status=pending").await.body["data"][0]["attempts"] == n
    })
    .await;
}

both!(a_failed_delivery_is_retried_on_the_schedule_with_the_same_id, retried);
async fn retried(app: TestApp) -> TestApp {
    let receiver = Receiver::start([Reply::Status(500), Reply::RetryAfter(503, "20")]).await;
    let (_, secret) = subscribe(&app, &receiver, json!(["key.created"])).await;
    app.create_key(json!({ "name": "retried" })).await;
    receiver.wait_for(1).await;
    attempts_recorded(&app, 1).await;
    // The first retry is due 5 s (± 20 %) later: nothing comes before the clock gets there.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(receiver.received().len(), 1);
    app.clock.advance(chrono::Duration::seconds(6));
    receiver.wait_for(2).await;
    attempts_recorded(&app, 2).await;
    // The receiver asked for 20 s, less than the schedule's next wait (300 s ± 20 %), which
    // holds.
    app.clock.advance(chrono::Duration::seconds(30));
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(receiver.received().len(), 2);
    app.clock.advance(chrono::Duration::seconds(330));
    let got = receiver.wait_for(3).await;
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    // Each attempt is signed afresh (its own timestamp); the body is the same.
    assert!(got.iter().all(|r| r.body == got[0].body));
    let _ = secret;
    app
}

both!(a_410_disables_the_subscription_at_once, gone);
async fn gone(app: TestApp) -> TestApp {
    let receiver = Receiver::start([Reply::Status(410)]).await;
    let (id, _) = subscribe(&app, &receiver, json!(["key.created"])).await;
    app.create_key(json!({ "name": "gone" })).await;
    receiver.wait_for(1).await;
    eventually("the subscription is disabled", || async {
        status_of(&app, &id).await["status"] == "disabled"
    })
    .await;
    assert_eq!(status_of(&app, &id).await["disabled"]["kind"], "gone");
    // Nothing more goes there until it is enabled again.
    app.create_key(json!({ "name": "after" })).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
    app
}

both!(a_redirect_is_not_followed, redirect);
async fn redirect(app: TestApp) -> TestApp {
    let elsewhere = Receiver::start([]).await;
    let receiver = Receiver::start([Reply::Redirect(elsewhere.url.clone())]).await;
    subscribe(&app, &receiver, json!(["key.created"])).await;
    app.create_key(json!({ "name": "redirected" })).await;
    receiver.wait_for(1).await;
    app.clock.advance(chrono::Duration::seconds(6));
    receiver.wait_for(2).await;
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
    app
}

both!(a_paused_subscription_gets_its_events_once_resumed, paused);
async fn paused(app: TestApp) -> TestApp {
    let receiver = Receiver::start([]).await;
    let (id, _) = subscribe(&app, &receiver, json!(["key.created"])).await;
    let paused = app.post(&format!("/v1/webhooks/{id}/pause"), json!({})).await;
    assert_eq!(paused.status, StatusCode::OK, "{:?}", paused.body);
    app.create_key(json!({ "name": "while-paused" })).await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(receiver.received().is_empty());
    let resumed = app.post(&format!("/v1/webhooks/{id}/resume"), json!({})).await;
    assert_eq!(resumed.status, StatusCode::OK, "{:?}", resumed.body);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["data"]["name"], "while-paused");
    app
}

both!(a_subscription_hears_only_events_after_it_was_made, only_later);
async fn only_later(app: TestApp) -> TestApp {
    app.create_key(json!({ "name": "before" })).await;
    let receiver = Receiver::start([]).await;
    subscribe(&app, &receiver, json!(["key.created"])).await;
    app.create_key(json!({ "name": "after" })).await;
    let got = receiver.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(got[0].json()["data"]["name"], "after");
    app
}

both!(a_dead_receiver_holds_only_its_own_slots, dead_receiver);
async fn dead_receiver(app: TestApp) -> TestApp {
    let dead = Receiver::start(std::iter::repeat_n(Reply::Hang(std::time::Duration::from_secs(30)), 50)).await;
    let alive = Receiver::start([]).await;
    subscribe(&app, &dead, json!(["key.created"])).await;
    subscribe(&app, &alive, json!(["key.created"])).await;
    for i in 0..20 {
        app.create_key(json!({ "name": format!("busy-{i}") })).await;
    }
    // The live receiver gets every event while the dead one holds its requests unanswered.
    alive.wait_for(20).await;
    assert!(
        dead.received().len() <= 8,
        "at most 8 attempts in flight to one subscription: {}",
        dead.received().len()
    );
    app
}

/// Two nodes on one PostgreSQL share the deliveries: every event is delivered, and none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_deliveries_and_send_each_once() {
    let Some(db) = keyledger_tests::fresh_database(keyledger_tests::Backend::Postgres).await else {
        return;
    };
    let a = keyledger_tests::start(db.clone(), Default::default()).await;
    let b = keyledger_tests::start(db.clone(), Default::default()).await;
    let receiver = Receiver::start([]).await;
    subscribe(&a, &receiver, json!(["key.created"])).await;
    for i in 0..30 {
        let node = if i % 2 == 0 { &a } else { &b };
        node.create_key(json!({ "name": format!("shared-{i}") })).await;
    }
    receiver.wait_for(30).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let ids: std::collections::BTreeSet<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!((receiver.received().len(), ids.len()), (30, 30), "each event once");
    b.stop().await;
    a.finish().await;
}

both!(a_longer_retry_after_is_honoured, retry_after);
async fn retry_after(app: TestApp) -> TestApp {
    let receiver = Receiver::start([Reply::RetryAfter(503, "600")]).await;
    subscribe(&app, &receiver, json!(["key.created"])).await;
    app.create_key(json!({ "name": "asked to wait" })).await;
    receiver.wait_for(1).await;
    attempts_recorded(&app, 1).await;
    // The schedule would try again after 5 s; the receiver asked for 10 minutes.
    app.clock.advance(chrono::Duration::seconds(30));
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(receiver.received().len(), 1, "the receiver's Retry-After is waited for");
    app.clock.advance(chrono::Duration::seconds(580));
    receiver.wait_for(2).await;
    app
}

both!(
    a_paused_subscription_deleted_fails_its_held_deliveries,
    paused_then_deleted
);
async fn paused_then_deleted(app: TestApp) -> TestApp {
    let receiver = Receiver::start([]).await;
    let (id, _) = subscribe(&app, &receiver, json!(["key.created"])).await;
    app.post(&format!("/v1/webhooks/{id}/pause"), json!({})).await;
    app.create_key(json!({ "name": "held then orphaned" })).await;
    let held = || async { app.get("/v1/webhooks/deliveries?status=held").await.body["data"].clone() };
    eventually("a held delivery", || async {
        held().await.as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    let deleted = app.delete_as(&app.token, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // Released by the sweep (every 5 s) and failed by the sender, not held for ever.
    let failed = || async { app.get("/v1/webhooks/deliveries?status=failed").await.body["data"][0].clone() };
    let began = std::time::Instant::now();
    while failed().await.is_null() {
        assert!(
            began.elapsed() < std::time::Duration::from_secs(15),
            "the held delivery was failed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(failed().await["last_error"], "the subscription was deleted");
    assert!(receiver.received().is_empty());
    app
}
