use keyledger_tests::{both, TestApp};
use reqwest::StatusCode;
use serde_json::json;

both!(the_audit_log_filters_by_actor_action_and_time_and_pages, audit_filters);
async fn audit_filters(app: TestApp) -> TestApp {
    let (writer_id, writer) = app
        .create_token(
            &app.token,
            json!({ "name": "writer", "permissions": ["API_MANAGEMENT_WRITE"] }),
        )
        .await;
    let k1 = app.post_as(&writer, "/v1/keys", json!({ "name": "one" })).await.body;
    app.post_as(&writer, "/v1/keys", json!({ "name": "two" })).await;
    app.post(&format!("/v1/keys/{}/revoke", k1["id"].as_str().unwrap()), json!({}))
        .await;

    let all = app.get("/v1/audit").await;
    let actions: Vec<&str> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "KeyRevoked",
            "KeyIssued",
            "KeyIssued",
            "AdminTokenIssued",
            "AdminTokenIssued"
        ],
        "newest first"
    );
    assert!(!all.body.to_string().contains("pbkdf2"), "no hashes in the audit log");
    // What an entry shows beyond who, what and when comes from its event.
    let revoked = &all.body["data"][0];
    assert_eq!(revoked["aggregate_type"], "ApiKey");
    assert_eq!(revoked["aggregate_id"], k1["id"]);
    assert_eq!(revoked["tenant"], "default");
    assert!(
        revoked["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{revoked}"
    );
    let second = &all.body["data"][1]["details"];
    assert_eq!(second["name"], "two", "the issue's fields: {second}");
    assert!(second.get("secret_hash").is_none(), "{second}");

    let by_writer = app.get(&format!("/v1/audit?actor=admin_token:{writer_id}")).await;
    assert_eq!(by_writer.body["data"].as_array().unwrap().len(), 2);
    let issued = app.get("/v1/audit?action=KeyIssued").await;
    assert_eq!(issued.body["data"].as_array().unwrap().len(), 2);
    let several = app.get("/v1/audit?action=KeyIssued,KeyRevoked").await;
    assert_eq!(several.body["data"].as_array().unwrap().len(), 3);
    let future = app.get("/v1/audit?since=2999-01-01T00:00:00Z").await;
    assert!(future.body["data"].as_array().unwrap().is_empty());
    let past = app.get("/v1/audit?since=2000-01-01T00:00:00Z").await;
    assert_eq!(past.body["data"].as_array().unwrap().len(), 5);

    // Cursor pagination walks every entry exactly once.
    let mut seen = Vec::new();
    let mut path = "/v1/audit?limit=2".to_owned();
    loop {
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        seen.extend(
            page.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["position"].as_i64().unwrap()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/audit?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);
    let bad = app.get("/v1/audit?since=yesterday").await;
    assert_eq!(
        (bad.status, bad.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    app
}
