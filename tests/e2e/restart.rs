use keyledger_tests::{both, TestApp};
use reqwest::StatusCode;
use serde_json::json;

both!(data_and_read_models_survive_a_restart, restart);
async fn restart(app: TestApp) -> TestApp {
    let key = app
        .create_key(json!({ "name": "durable", "scopes": ["FILES_READ"] }))
        .await;
    let (_, token) = app
        .create_token(
            &app.token,
            json!({ "name": "durable token", "permissions": ["API_MANAGEMENT_READ"] }),
        )
        .await;
    let audit_before = app.get("/v1/audit").await.body;
    let events_before = app.event_count().await;

    let app = app.restart().await;
    assert_eq!(
        app.event_count().await,
        events_before,
        "no event lost or added by a restart"
    );
    let got = app.get(&format!("/v1/keys/{}", key["id"].as_str().unwrap())).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["name"], "durable");
    assert_eq!(
        app.get_as(&token, "/v1/keys").await.status,
        StatusCode::OK,
        "tokens still work"
    );
    assert_eq!(
        app.get("/v1/audit").await.body,
        audit_before,
        "projections were not re-applied"
    );
    let more = app.create_key(json!({ "name": "after restart" })).await;
    assert_eq!(more["status"], "active");
    assert_eq!(app.event_count().await, events_before + 1);
    app
}
