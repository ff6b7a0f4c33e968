use keyledger_api::scheduler;
use keyledger_tests::{both, TestApp};
use serde_json::json;

async fn expiry_events(app: &TestApp, id: &str) -> Vec<String> {
    let history = app.get(&format!("/v1/keys/{id}/history")).await.body;
    history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] != "KeyIssued")
        .map(|e| match e["data"]["warning"].as_str() {
            Some(w) => format!("{}:{w}", e["event_type"].as_str().unwrap()),
            None => e["event_type"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// One scheduler pass, then wait until read models include what it wrote.
async fn tick(app: &TestApp) {
    scheduler::run_once(&app.state).await.unwrap();
    let head = app.event_count().await;
    app.state.settle(head).await;
}

both!(
    expiry_warnings_and_expiry_are_recorded_once_each_even_across_restarts,
    expiry
);
async fn expiry(app: TestApp) -> TestApp {
    let expires = app.clock_now() + chrono::Duration::days(8);
    let key = app
        .create_key(json!({ "name": "temp", "expires_at": expires.to_rfc3339() }))
        .await;
    let id = key["id"].as_str().unwrap().to_owned();

    tick(&app).await;
    assert!(expiry_events(&app, &id).await.is_empty(), "nothing due 8 days out");

    app.clock.advance(chrono::Duration::hours(36)); // 6.5 days left
    tick(&app).await;
    tick(&app).await;
    assert_eq!(expiry_events(&app, &id).await, ["KeyExpiryWarned:seven_days"]);

    let app = app.restart().await;
    tick(&app).await;
    assert_eq!(
        expiry_events(&app, &id).await,
        ["KeyExpiryWarned:seven_days"],
        "not repeated after a restart"
    );

    app.clock.advance(chrono::Duration::days(6)); // 12 hours left
    tick(&app).await;
    tick(&app).await;
    assert_eq!(
        expiry_events(&app, &id).await,
        ["KeyExpiryWarned:seven_days", "KeyExpiryWarned:one_day"]
    );

    app.clock.advance(chrono::Duration::hours(13));
    // Past expiry, the key already reads as expired before the scheduler records it.
    assert_eq!(app.get(&format!("/v1/keys/{id}")).await.body["status"], "expired");
    tick(&app).await;
    tick(&app).await;
    assert_eq!(
        expiry_events(&app, &id).await,
        ["KeyExpiryWarned:seven_days", "KeyExpiryWarned:one_day", "KeyExpired"]
    );
    let expired = app.get("/v1/keys?status=expired").await.body;
    assert_eq!(expired["data"][0]["id"], id.as_str());
    assert!(app.get("/v1/keys?status=active").await.body["data"]
        .as_array()
        .unwrap()
        .is_empty());
    let edit = app
        .patch(&format!("/v1/keys/{id}"), json!({ "name": "too late" }))
        .await;
    assert_eq!(edit.error_code(), "key_not_active");
    app
}
