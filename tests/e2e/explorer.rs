//! The explorer's Test and the edge agree: for each case of the table, what the Test says the edge
//! answers is what the edge answers the same request with the same key, from the same address.

use keyledger_tests::{both, spawn_upstream, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    key: String,
    key_id: String,
    endpoint: String,
    path: &'static str,
    /// What both must say: the edge's status and error code (none when it lets the request through).
    expected: (StatusCode, Option<&'static str>),
}

/// The Test's `edge` answer as (status, code): 200 and no code when the edge lets it through.
fn said_by_test(answer: &Value) -> (StatusCode, Option<String>) {
    let edge = &answer["edge"];
    match edge["allowed"].as_bool() {
        Some(true) => (StatusCode::OK, None),
        _ => (
            StatusCode::from_u16(edge["status"].as_u64().unwrap_or(0) as u16).unwrap_or(StatusCode::IM_A_TEAPOT),
            edge["code"].as_str().map(str::to_owned),
        ),
    }
}

fn said_by_edge(answer: &keyledger_tests::Answer) -> (StatusCode, Option<String>) {
    let code = answer.body["error"]["code"].as_str().map(str::to_owned);
    (answer.status, code)
}

async fn test_of(app: &TestApp, case: &Case, by_id: bool) -> Value {
    let who = if by_id {
        json!({ "key_id": case.key_id })
    } else {
        json!({ "key": case.key })
    };
    let mut body = json!({ "path_params": { "id": "1" }, "client_ip": "127.0.0.1" });
    body.as_object_mut().unwrap().extend(who.as_object().unwrap().clone());
    let answer = app.post(&format!("/v1/endpoints/{}/test", case.endpoint), body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}: {:?}", case.name, answer.body);
    answer.body
}

async fn key(app: &TestApp, body: Value) -> (String, String) {
    let created = app.create_key(body).await;
    (
        created["key"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    )
}

both!(the_explorers_test_and_the_edge_agree_on_every_rule, agreement);
async fn agreement(app: TestApp) -> TestApp {
    let upstream = spawn_upstream().await;
    let files = app
        .register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "required_scopes": ["FILES_READ"], "upstream_url": format!("{upstream}/api") }))
        .await;
    let reports = app
        .register_endpoint(json!({ "methods": ["GET"], "path": "/reports/{id}", "plugin": "Reports", "upstream_url": format!("{upstream}/api") }))
        .await;
    let (files, reports) = (
        files["id"].as_str().unwrap().to_owned(),
        reports["id"].as_str().unwrap().to_owned(),
    );
    let disabled = app.post(&format!("/v1/endpoints/{reports}/disable"), json!({})).await;
    assert_eq!(disabled.status, StatusCode::OK, "{:?}", disabled.body);

    let expiring = key(&app, json!({ "name": "expired", "scopes": ["FILES_READ"], "expires_at": (app.clock_now() + chrono::Duration::hours(1)).to_rfc3339() })).await;
    app.clock.advance(chrono::Duration::hours(2));
    let valid = key(&app, json!({ "name": "valid", "scopes": ["FILES_READ"] })).await;
    let revoked = key(&app, json!({ "name": "revoked", "scopes": ["FILES_READ"] })).await;
    let revoking = app.post(&format!("/v1/keys/{}/revoke", revoked.1), json!({})).await;
    assert_eq!(revoking.status, StatusCode::OK);
    // The test talks to the edge from 127.0.0.1.
    let elsewhere = key(
        &app,
        json!({ "name": "ip", "scopes": ["FILES_READ"], "ip_allow": ["10.0.0.0/8"] }),
    )
    .await;
    let unscoped = key(&app, json!({ "name": "scope", "scopes": ["FILES_UPLOAD"] })).await;
    let limited = key(
        &app,
        json!({ "name": "limited", "scopes": ["FILES_READ"], "rate_limits": { "per_minute": 1 } }),
    )
    .await;

    let case = |name, (key, key_id): &(String, String), endpoint: &str, path, expected| Case {
        name,
        key: key.clone(),
        key_id: key_id.clone(),
        endpoint: endpoint.to_owned(),
        path,
        expected,
    };
    let limited_case = |expected| case("rate-limited", &limited, &files, "/files/1", expected);
    let table = [
        case("valid", &valid, &files, "/files/1", (StatusCode::OK, None)),
        case(
            "revoked",
            &revoked,
            &files,
            "/files/1",
            (StatusCode::UNAUTHORIZED, Some("key_revoked")),
        ),
        case(
            "expired",
            &expiring,
            &files,
            "/files/1",
            (StatusCode::UNAUTHORIZED, Some("key_expired")),
        ),
        case(
            "IP refused",
            &elsewhere,
            &files,
            "/files/1",
            (StatusCode::FORBIDDEN, Some("ip_forbidden")),
        ),
        case(
            "scope missing",
            &unscoped,
            &files,
            "/files/1",
            (StatusCode::FORBIDDEN, Some("insufficient_scope")),
        ),
        // The quota's one request is still there: the Test looks and takes nothing…
        limited_case((StatusCode::OK, None)),
        // …so the edge's request spends it, and then both refuse.
        limited_case((StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))),
        case(
            "endpoint off for the tenant",
            &valid,
            &reports,
            "/reports/1",
            (StatusCode::NOT_FOUND, Some("endpoint_not_found")),
        ),
    ];

    for case in &table {
        let expected = (case.expected.0, case.expected.1.map(str::to_owned));
        for by_id in [false, true] {
            let test = test_of(&app, case, by_id).await;
            assert_eq!(said_by_test(&test), expected, "{} (by id: {by_id}): {test}", case.name);
            let refused = expected.1.is_some();
            assert_eq!(
                test["warnings"].as_array().map(|w| !w.is_empty()),
                Some(refused),
                "{}: a refusal is also a warning: {test}",
                case.name
            );
        }
        let edge = app.edge_request(Method::GET, case.path, Some(&case.key), &[]).await;
        assert_eq!(
            said_by_edge(&edge),
            expected,
            "{}: the edge: {:?}",
            case.name,
            edge.body
        );
    }

    // The Test says what the edge's headers would: the minute's one request is spent.
    let test = test_of(&app, &limited_case((StatusCode::TOO_MANY_REQUESTS, None)), true).await;
    assert_eq!(test["edge"]["ratelimit"]["limit"], 1, "{test}");
    assert_eq!(test["edge"]["ratelimit"]["remaining"], 0, "{test}");

    // Without client_ip the key's IP rules are not judged, and the answer says so.
    let unjudged = app
        .post(
            &format!("/v1/endpoints/{files}/test"),
            json!({ "path_params": { "id": "1" }, "key_id": elsewhere.1 }),
        )
        .await;
    assert_eq!(unjudged.body["edge"]["verdict"], "VALID", "{:?}", unjudged.body);
    assert!(
        unjudged.body["warnings"][0].as_str().unwrap().contains("client_ip"),
        "{:?}",
        unjudged.body
    );
    assert_eq!(
        app.post(
            &format!("/v1/endpoints/{files}/test"),
            json!({ "path_params": { "id": "1" }, "key_id": valid.1, "client_ip": "10.0.0.300" }),
        )
        .await
        .error_code(),
        "invalid_client_ip"
    );
    // A key id no key has, or no key id at all, is a key the Test cannot act as.
    for unknown in [uuid::Uuid::new_v4().to_string(), "not-a-key-id".to_owned()] {
        let answer = app
            .post(
                &format!("/v1/endpoints/{files}/test"),
                json!({ "path_params": { "id": "1" }, "key_id": unknown }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{unknown}: {:?}", answer.body);
        assert_eq!(answer.error_code(), "not_found");
    }

    // GraphQL's Test is the same operation.
    let graphql = app
        .graphql(
            Some(&app.token),
            "mutation($id: String!, $input: TryEndpointInput!) { tryEndpoint(id: $id, input: $input) { status edge { verdict allowed status code } } }",
            json!({ "id": files, "input": { "pathParams": { "id": "1" }, "keyId": unscoped.1 } }),
        )
        .await;
    assert_eq!(
        graphql["data"]["tryEndpoint"]["edge"],
        json!({ "verdict": "INSUFFICIENT_SCOPE", "allowed": false, "status": 403, "code": "insufficient_scope" }),
        "{graphql}"
    );
    assert_eq!(
        graphql["data"]["tryEndpoint"]["status"], 200,
        "the upstream is still asked"
    );
    app
}
