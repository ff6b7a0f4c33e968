use keyledger_tests::{both, TestApp};
use reqwest::StatusCode;
use serde_json::json;

both!(admin_tokens_are_shown_once_listed_and_deleted, token_lifecycle);
async fn token_lifecycle(app: TestApp) -> TestApp {
    let created = app
        .post("/v1/admin-tokens", json!({ "name": "CI pipeline", "permissions": ["API_MANAGEMENT_WRITE"], "expires_at": "2099-01-01T00:00:00Z" }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let token = created.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("kla_"));

    // Works at once; listed without the secret, with its expiry status and last use.
    assert_eq!(
        app.post_as(&token, "/v1/keys", json!({ "name": "from CI" }))
            .await
            .status,
        StatusCode::CREATED
    );
    let list = app.get("/v1/admin-tokens").await;
    assert!(!list.body.to_string().contains(&token));
    let row = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["name"], "CI pipeline");
    assert_eq!(row["expiry_status"], "active");
    assert_eq!(row["permissions"], json!(["API_MANAGEMENT_WRITE"]));
    // Last use is recorded off the request path; wait for it without a fixed sleep.
    let mut last_used = serde_json::Value::Null;
    for _ in 0..100 {
        let list = app.get("/v1/admin-tokens").await;
        last_used = list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id.as_str())
            .unwrap()["last_used_at"]
            .clone();
        if !last_used.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(last_used.is_string(), "last_used_at recorded");

    // The same name again: refused with the product's error.
    let dup = app
        .post(
            "/v1/admin-tokens",
            json!({ "name": "ci PIPELINE", "permissions": ["API_MANAGEMENT_READ"] }),
        )
        .await;
    assert_eq!(
        (dup.status, dup.error_code()),
        (StatusCode::CONFLICT, "token_already_exists")
    );

    // Delete: stops working at once, and the name is free again.
    let deleted = app.delete_as(&app.token, &format!("/v1/admin-tokens/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let refused = app.get_as(&token, "/v1/keys").await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let gone = app.delete_as(&app.token, &format!("/v1/admin-tokens/{id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let reuse = app
        .post(
            "/v1/admin-tokens",
            json!({ "name": "CI pipeline", "permissions": ["API_MANAGEMENT_READ"] }),
        )
        .await;
    assert_eq!(reuse.status, StatusCode::CREATED);
    app
}

both!(requests_without_a_valid_token_are_refused, unauthenticated);
async fn unauthenticated(app: TestApp) -> TestApp {
    let none = app.request(reqwest::Method::GET, "/v1/keys", None, None).await;
    assert_eq!(
        (none.status, none.error_code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert_eq!(none.headers.get("www-authenticate").unwrap(), "Bearer");
    for bad in ["kla_nope", "kla_0000000000000000000000000000000000000000000", "x"] {
        let answer = app.get_as(bad, "/v1/keys").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    // A real token with one character changed.
    let mut tampered = app.token.clone();
    tampered.pop();
    tampered.push('Z');
    assert_eq!(app.get_as(&tampered, "/v1/keys").await.status, StatusCode::UNAUTHORIZED);
    app
}

both!(an_expired_admin_token_stops_working, expired_token);
async fn expired_token(app: TestApp) -> TestApp {
    let in_an_hour = (app.clock_now() + chrono::Duration::hours(1)).to_rfc3339();
    let (_, token) = app
        .create_token(
            &app.token,
            json!({ "name": "short", "permissions": ["API_MANAGEMENT_READ"], "expires_at": in_an_hour }),
        )
        .await;
    assert_eq!(app.get_as(&token, "/v1/keys").await.status, StatusCode::OK);
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(app.get_as(&token, "/v1/keys").await.status, StatusCode::UNAUTHORIZED);
    let list = app.get("/v1/admin-tokens").await;
    let row = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "short")
        .unwrap()
        .clone();
    assert_eq!(row["expiry_status"], "expired");
    app
}

both!(permissions_limit_what_a_token_may_do, permission_checks);
async fn permission_checks(app: TestApp) -> TestApp {
    let reader = app.token_for("default", "reader", &["API_MANAGEMENT_READ"]).await;
    let writer = app.token_for("default", "writer", &["API_MANAGEMENT_WRITE"]).await;
    let tenant_admin = app.token_for("default", "tenant admin", &["TENANT_ADMIN"]).await;

    assert_eq!(app.get_as(&reader, "/v1/keys").await.status, StatusCode::OK);
    let refused = app.post_as(&reader, "/v1/keys", json!({ "name": "x" })).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    assert_eq!(
        app.post_as(&writer, "/v1/keys", json!({ "name": "x" })).await.status,
        StatusCode::CREATED
    );
    let no_tokens = app
        .post_as(
            &writer,
            "/v1/admin-tokens",
            json!({ "name": "y", "permissions": ["API_MANAGEMENT_READ"] }),
        )
        .await;
    assert_eq!(no_tokens.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get_as(&writer, "/v1/admin-tokens").await.status,
        StatusCode::FORBIDDEN
    );

    // A tenant admin can hand out what it holds, never SUPERUSER.
    let ok = app
        .post_as(
            &tenant_admin,
            "/v1/admin-tokens",
            json!({ "name": "z", "permissions": ["API_MANAGEMENT_WRITE"] }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let escalate = app
        .post_as(
            &tenant_admin,
            "/v1/admin-tokens",
            json!({ "name": "root", "permissions": ["SUPERUSER"] }),
        )
        .await;
    assert_eq!(
        (escalate.status, escalate.error_code()),
        (StatusCode::FORBIDDEN, "permission_not_grantable")
    );
    // Nor take away a superuser's token: deleting needs every permission the token holds.
    let tokens = app.get("/v1/admin-tokens").await;
    let root = tokens.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["permissions"] == json!(["SUPERUSER"]))
        .unwrap_or_else(|| panic!("the bootstrap token: {:?}", tokens.body))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let taken = app.delete_as(&tenant_admin, &format!("/v1/admin-tokens/{root}")).await;
    assert_eq!(
        (taken.status, taken.error_code()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{:?}",
        taken.body
    );
    assert_eq!(
        app.get("/v1/keys").await.status,
        StatusCode::OK,
        "the superuser's token still works"
    );
    let bad = app
        .post(
            "/v1/admin-tokens",
            json!({ "name": "bad", "permissions": ["GOD_MODE"] }),
        )
        .await;
    assert_eq!(
        (bad.status, bad.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_permissions")
    );
    let empty = app
        .post("/v1/admin-tokens", json!({ "name": "bad", "permissions": [] }))
        .await;
    assert_eq!(empty.error_code(), "invalid_permissions");
    app
}
