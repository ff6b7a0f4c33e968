//! Error codes as a client meets them: each request below is refused with its code, and the
//! status is the one `ErrorCode` (and so `/openapi.json` and the README) gives that code. Codes
//! that need a whole scenario are asserted where that scenario lives: the edge's in `edge.rs`,
//! GraphQL's in `graphql.rs`, `database_unavailable` in `outage.rs`.

use keyledger_api::error::ErrorCode;
use keyledger_tests::{both, Answer, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

fn assert_refused(what: &str, answer: &Answer, code: ErrorCode) {
    assert_eq!(answer.error_code(), code.as_str(), "{what}: {:?}", answer.body);
    assert_eq!(answer.status, code.status(), "{what}: the status of {}", code.as_str());
}

/// A POST as the test's superuser with exactly these headers and body.
async fn raw(app: &TestApp, path: &str, headers: &[(&str, &[u8])], body: &'static str) -> Answer {
    let mut request = app.client.post(app.url(path)).bearer_auth(&app.token).body(body);
    for (name, value) in headers {
        request = request.header(*name, reqwest::header::HeaderValue::from_bytes(value).expect("header"));
    }
    Answer::read(request.send().await.expect("sent")).await
}

both!(each_error_code_answers_with_its_documented_status, codes);
async fn codes(app: TestApp) -> TestApp {
    let post = |path: &'static str, body: Value| {
        let app = &app;
        async move { app.post(path, body).await }
    };
    let endpoint = |method: &'static str, path: &'static str, upstream: &'static str| {
        let app = &app;
        let body = json!({ "methods": [method], "path": path, "plugin": "Files", "upstream_url": upstream });
        async move { app.post("/v1/endpoints", body).await }
    };
    let key = app.create_key(json!({ "name": "target" })).await;
    let id = key["id"].as_str().unwrap().to_owned();
    let before = app.event_count().await;

    let cut_off = raw(&app, "/v1/keys", &[("content-type", b"application/json")], "{").await;
    assert_refused("a body cut off", &cut_off, ErrorCode::InvalidJson);
    let text = raw(&app, "/v1/keys", &[("content-type", b"text/plain")], "{}").await;
    assert_refused("a text body", &text, ErrorCode::UnsupportedMediaType);
    let cases: Vec<(&str, Answer, ErrorCode)> = vec![
        (
            "no token",
            app.request(Method::GET, "/v1/keys", None, None).await,
            ErrorCode::Unauthorized,
        ),
        (
            "a limit that is not a number",
            app.get("/v1/keys?limit=many").await,
            ErrorCode::InvalidQuery,
        ),
        (
            "a limit of 0",
            app.get("/v1/keys?limit=0").await,
            ErrorCode::InvalidLimit,
        ),
        (
            "a made-up cursor",
            app.get("/v1/keys?cursor=abc").await,
            ErrorCode::InvalidCursor,
        ),
        (
            "an unknown status",
            app.get("/v1/keys?status=sleeping").await,
            ErrorCode::InvalidStatus,
        ),
        (
            "a malformed tenant",
            app.get("/v1/keys?tenant=Not%20A%20Tenant").await,
            ErrorCode::InvalidTenant,
        ),
        (
            "an empty name",
            post("/v1/keys", json!({ "name": "" })).await,
            ErrorCode::InvalidName,
        ),
        (
            "an unknown scope",
            post("/v1/keys", json!({ "name": "x", "scopes": ["NOPE"] })).await,
            ErrorCode::InvalidScope,
        ),
        (
            "a zero rate limit",
            post("/v1/keys", json!({ "name": "x", "rate_limits": { "per_minute": 0 } })).await,
            ErrorCode::InvalidRateLimits,
        ),
        (
            "an address that is not one",
            post("/v1/keys", json!({ "name": "x", "ip_allow": ["300.1.1.1"] })).await,
            ErrorCode::InvalidIpRule,
        ),
        (
            "an expiry in the past",
            post("/v1/keys", json!({ "name": "x", "expires_at": "2001-01-01T00:00:00Z" })).await,
            ErrorCode::InvalidExpiry,
        ),
        (
            "an unknown key",
            app.get(&format!("/v1/keys/{}", uuid::Uuid::new_v4())).await,
            ErrorCode::NotFound,
        ),
        ("an id with NUL", app.get("/v1/keys/a%00b").await, ErrorCode::NotFound),
        (
            "no permissions",
            post("/v1/admin-tokens", json!({ "name": "none", "permissions": [] })).await,
            ErrorCode::InvalidPermissions,
        ),
        (
            "an unknown HTTP method",
            endpoint("FETCH", "/files", "http://127.0.0.1:9").await,
            ErrorCode::InvalidMethods,
        ),
        (
            "a path that is not one",
            endpoint("GET", "files", "http://127.0.0.1:9").await,
            ErrorCode::InvalidPath,
        ),
        (
            "an upstream that is not http(s)",
            endpoint("GET", "/files", "ftp://files").await,
            ErrorCode::InvalidUpstreamUrl,
        ),
    ];
    for (what, answer, code) in &cases {
        assert_refused(what, answer, *code);
    }
    assert_eq!(app.event_count().await, before, "no refused request wrote anything");

    let reader = app.token_for("default", "reader", &["API_MANAGEMENT_READ"]).await;
    let forbidden = app
        .request(Method::POST, "/v1/keys", Some(&reader), Some(json!({ "name": "x" })))
        .await;
    assert_refused("a read-only token writing", &forbidden, ErrorCode::Forbidden);
    let named = json!({ "name": "twice", "permissions": ["API_MANAGEMENT_READ"] });
    assert_eq!(
        app.post("/v1/admin-tokens", named.clone()).await.status,
        reqwest::StatusCode::CREATED
    );
    assert_refused(
        "a token name taken",
        &app.post("/v1/admin-tokens", named).await,
        ErrorCode::TokenAlreadyExists,
    );
    let revoke = format!("/v1/keys/{id}/revoke");
    assert_eq!(app.post(&revoke, json!({})).await.status, reqwest::StatusCode::OK);
    assert_refused(
        "revoking twice",
        &app.post(&revoke, json!({})).await,
        ErrorCode::KeyAlreadyRevoked,
    );
    assert_refused(
        "changing a revoked key",
        &app.patch(&format!("/v1/keys/{id}"), json!({ "name": "late" })).await,
        ErrorCode::KeyNotActive,
    );

    let active = app.create_key(json!({ "name": "active" })).await;
    let active = active["id"].as_str().unwrap();
    assert_refused(
        "a grace period past 7 days",
        &app.post(
            &format!("/v1/keys/{active}/rotate"),
            json!({ "grace_seconds": 8 * 86_400 }),
        )
        .await,
        ErrorCode::InvalidGracePeriod,
    );
    assert_refused(
        "a reason of 501 characters",
        &app.post(
            &format!("/v1/keys/{active}/revoke"),
            json!({ "reason": "x".repeat(501) }),
        )
        .await,
        ErrorCode::InvalidReason,
    );
    let not_ascii = raw(
        &app,
        "/v1/keys",
        &[("content-type", b"application/json"), ("idempotency-key", b"caf\xe9")],
        r#"{"name":"x"}"#,
    )
    .await;
    assert_refused(
        "an idempotency key that is not ASCII",
        &not_ascii,
        ErrorCode::InvalidIdempotencyKey,
    );

    let files = endpoint("GET", "/files/{id}", "http://127.0.0.1:9").await;
    assert_eq!(files.status, reqwest::StatusCode::CREATED, "{:?}", files.body);
    let files = files.body["id"].as_str().unwrap().to_owned();
    assert_refused(
        "a method and path already served",
        &endpoint("GET", "/files/{file}", "http://127.0.0.1:9").await,
        ErrorCode::EndpointConflict,
    );
    assert_refused(
        "a sunset in the past",
        &app.post(
            &format!("/v1/endpoints/{files}/deprecate"),
            json!({ "sunset": "2001-01-01T00:00:00Z" }),
        )
        .await,
        ErrorCode::InvalidSunset,
    );
    assert_refused(
        "a Test without the path's {id}",
        &app.post(&format!("/v1/endpoints/{files}/test"), json!({})).await,
        ErrorCode::MissingPathParam,
    );
    let import = raw(
        &app,
        "/v1/endpoints/import?plugin=Files&upstream=http://127.0.0.1:9",
        &[("content-type", b"application/yaml")],
        "this is not an OpenAPI document",
    )
    .await;
    assert_refused("a document that is not OpenAPI", &import, ErrorCode::InvalidOpenapi);
    app
}

both!(
    oversized_bodies_and_a_corrupt_row_answer_with_their_documented_status,
    sizes_and_corruption
);
async fn sizes_and_corruption(app: TestApp) -> TestApp {
    let key = app.create_key(json!({ "name": "target" })).await;
    let id = key["id"].as_str().unwrap().to_owned();
    let before = app.event_count().await;
    assert_refused(
        "a description of 2 001 characters",
        &app.post(
            "/v1/endpoints",
            json!({ "methods": ["GET"], "path": "/d", "plugin": "Files", "upstream_url": "http://127.0.0.1:9", "description": "d".repeat(2_001) }),
        )
        .await,
        ErrorCode::InvalidDescription,
    );
    let name = json!({ "name": "n".repeat(3 << 20) }).to_string();
    assert_refused(
        "a JSON body of 3 MiB",
        &app.post_oversized("/v1/keys", "application/json", name.into_bytes())
            .await,
        ErrorCode::BodyTooLarge,
    );
    let document = format!("openapi: 3.1.0\n# {}\n", "x".repeat(8 << 20));
    assert_refused(
        "an OpenAPI document over 8 MiB",
        &app.post_oversized(
            "/v1/endpoints/import?plugin=Files&upstream=http://127.0.0.1:9",
            "application/yaml",
            document.into_bytes(),
        )
        .await,
        ErrorCode::DocumentTooLarge,
    );
    assert_eq!(app.event_count().await, before, "no refused request wrote anything");

    // A stored row that no longer parses is the server's fault: 500 with the error body, its
    // cause in the log and not in the answer.
    sqlx::query("UPDATE api_keys SET state = 'not the state' WHERE key_id = $1")
        .bind(&id)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let corrupt = app.get(&format!("/v1/keys/{id}")).await;
    assert_refused("a corrupt read-model row", &corrupt, ErrorCode::InternalError);
    assert!(
        !corrupt.body.to_string().contains("not the state"),
        "{:?}",
        corrupt.body
    );
    app
}

/// Every code is asserted, with its status, by some scenario of these tests: a code added without
/// one fails here.
#[test]
fn every_error_code_is_asserted_by_a_scenario() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e");
    let sources: String = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default())
        .collect();
    let variant = |code: &str| {
        let camel: String = code
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        format!("ErrorCode::{camel}")
    };
    // `ErrorCode::InvalidJson` must not count for `ErrorCode::InvalidJsonBody`.
    let names_variant = |name: &str| {
        sources
            .match_indices(name)
            .any(|(at, _)| !sources[at + name.len()..].starts_with(|c: char| c.is_alphanumeric()))
    };
    let unasserted: Vec<&str> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| !sources.contains(&format!("\"{code}\"")) && !names_variant(&variant(code)))
        .collect();
    assert!(unasserted.is_empty(), "no scenario asserts {unasserted:?}");
}
