use keyledger_tests::{both, graphql_error_code, TestApp};
use reqwest::StatusCode;
use serde_json::json;

both!(graphql_covers_the_key_lifecycle, key_lifecycle);
async fn key_lifecycle(app: TestApp) -> TestApp {
    let token = app.token.clone();
    let created = app
        .graphql(
            Some(&token),
            r#"mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) {
                id key status environment scopes rateLimits { perSecond perMinute perHour } ipAllow } }"#,
            json!({ "input": {
                "name": "GraphQL key", "environment": "TEST", "scopes": ["FILES_READ"],
                "rateLimits": { "perSecond": 2 }, "ipAllow": ["192.168.0.0/16"]
            }}),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
    let key = &created["data"]["createApiKey"];
    assert!(key["key"].as_str().unwrap().starts_with("ak_test_"));
    assert_eq!(
        key["rateLimits"],
        json!({ "perSecond": 2, "perMinute": 60, "perHour": 3600 })
    );
    let id = key["id"].as_str().unwrap().to_owned();

    let listed = app
        .graphql(
            Some(&token),
            "{ apiKeys(limit: 5) { data { id name status key } nextCursor } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["data"]["apiKeys"]["data"][0]["id"], id.as_str());
    assert!(
        listed["data"]["apiKeys"]["data"][0]["key"].is_null(),
        "no secret in reads"
    );

    let updated = app
        .graphql(
            Some(&token),
            "mutation($id: String!) { updateApiKey(id: $id, input: { name: \"renamed\", scopes: [\"CHAT_READ\"] }) { name scopes } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        updated["data"]["updateApiKey"],
        json!({ "name": "renamed", "scopes": ["CHAT_READ"] })
    );

    let rotated = app
        .graphql(
            Some(&token),
            "mutation($id: String!) { rotateApiKey(id: $id, graceSeconds: 60) { key } }",
            json!({ "id": id }),
        )
        .await;
    assert!(rotated["data"]["rotateApiKey"]["key"]
        .as_str()
        .unwrap()
        .starts_with("ak_test_"));

    let revoked = app
        .graphql(
            Some(&token),
            "mutation($id: String!) { revokeApiKey(id: $id, reason: \"done\") { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(revoked["data"]["revokeApiKey"]["status"], "revoked");
    let again = app
        .graphql(
            Some(&token),
            "mutation($id: String!) { revokeApiKey(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(graphql_error_code(&again), Some("key_already_revoked"));

    let history = app
        .graphql(
            Some(&token),
            "query($id: String!) { apiKeyHistory(id: $id) { eventType actor } }",
            json!({ "id": id }),
        )
        .await;
    let types: Vec<&str> = history["data"]["apiKeyHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "KeyIssued",
            "KeyRenamed",
            "KeyScopesChanged",
            "KeyRotated",
            "KeyRevoked"
        ]
    );

    let as_of = app
        .graphql(
            Some(&token),
            "query($id: String!) { apiKey(id: $id, asOf: \"2000-01-01T00:00:00Z\") { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(graphql_error_code(&as_of), Some("not_found"));

    let audit = app
        .graphql(
            Some(&token),
            "{ auditLog(action: \"KeyRevoked\") { data { action aggregateId } nextCursor } }",
            json!({}),
        )
        .await;
    assert_eq!(audit["data"]["auditLog"]["data"][0]["aggregateId"], id.as_str());
    app
}

both!(graphql_manages_admin_tokens_with_the_same_rules, tokens);
async fn tokens(app: TestApp) -> TestApp {
    let token = app.token.clone();
    let create = r#"mutation($input: CreateAdminTokenInput!) { createAdminToken(input: $input) { id token name expiryStatus } }"#;
    let created = app
        .graphql(
            Some(&token),
            create,
            json!({ "input": { "name": "gql", "permissions": ["API_MANAGEMENT_READ"] } }),
        )
        .await;
    let new_token = created["data"]["createAdminToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = created["data"]["createAdminToken"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["createAdminToken"]["expiryStatus"], "never");

    let dup = app
        .graphql(
            Some(&token),
            create,
            json!({ "input": { "name": "GQL", "permissions": ["API_MANAGEMENT_READ"] } }),
        )
        .await;
    assert_eq!(graphql_error_code(&dup), Some("token_already_exists"));

    let me = app
        .graphql(Some(&new_token), "{ me { tenant permissions } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({ "tenant": "default", "permissions": ["API_MANAGEMENT_READ"] })
    );
    // What a client offers follows `holds` (permissions with what they include) and
    // `grantableScopes`.
    let admin = app
        .graphql(
            Some(&token),
            create,
            json!({ "input": { "name": "scoped admin", "permissions": ["TENANT_ADMIN"], "scopes": ["FILES_READ"] } }),
        )
        .await;
    let admin = admin["data"]["createAdminToken"]["token"].as_str().unwrap().to_owned();
    let me = app
        .graphql(Some(&admin), "{ me { permissions holds grantableScopes } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({
            "permissions": ["TENANT_ADMIN"],
            "holds": ["API_MANAGEMENT_READ", "API_MANAGEMENT_WRITE", "TENANT_ADMIN"],
            "grantableScopes": ["FILES_READ"],
        })
    );
    let forbidden = app
        .graphql(
            Some(&new_token),
            "mutation { createApiKey(input: { name: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(graphql_error_code(&forbidden), Some("forbidden"));

    let listed = app
        .graphql(Some(&token), "{ adminTokens { data { name lastUsedAt } } }", json!({}))
        .await;
    assert!(listed["data"]["adminTokens"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "gql"));

    let deleted = app
        .graphql(
            Some(&token),
            "mutation($id: String!) { deleteAdminToken(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(deleted["data"]["deleteAdminToken"], true);
    let after = app.graphql(Some(&new_token), "{ me { tenant } }", json!({})).await;
    assert_eq!(graphql_error_code(&after), Some("unauthorized"));
    app
}

both!(graphql_refuses_bad_input_and_strangers_without_writing, refusals);
async fn refusals(app: TestApp) -> TestApp {
    let before = app.event_count().await;
    let anonymous = app.graphql(None, "{ apiKeys { data { id } } }", json!({})).await;
    assert_eq!(graphql_error_code(&anonymous), Some("unauthorized"));
    let introspection = app
        .graphql(
            None,
            "{ __schema { queryType { name } mutationType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(introspection["data"]["__schema"]["queryType"]["name"], "Query");
    // The full query consoles (GraphiQL, Altair, Postman) send to load docs and completion.
    let full = app
        .graphql(None, include_str!("introspection.graphql"), json!({}))
        .await;
    assert!(full["errors"].is_null(), "{}", full["errors"]);
    assert!(full["data"]["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "ApiKey"));

    let bad_scope = app
        .graphql(
            Some(&app.token),
            "mutation { createApiKey(input: { name: \"x\", scopes: [\"ADMIN_ACCESS\"] }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(graphql_error_code(&bad_scope), Some("invalid_scope"));
    let bad_cidr = app
        .graphql(
            Some(&app.token),
            "mutation { createApiKey(input: { name: \"x\", ipBlock: [\"300.1.1.1\"] }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(graphql_error_code(&bad_cidr), Some("invalid_ip_rule"));
    // NUL, which PostgreSQL cannot store, in a variable or in a string literal of the query.
    let nul_variable = app
        .graphql(
            Some(&app.token),
            "mutation($name: String!) { createApiKey(input: { name: $name }) { id } }",
            json!({ "name": "a\u{0}b" }),
        )
        .await;
    assert_eq!(graphql_error_code(&nul_variable), Some("invalid_request"));
    let nul_literal = app
        .graphql(
            Some(&app.token),
            "mutation { createApiKey(input: { name: \"a\\u0000b\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(graphql_error_code(&nul_literal), Some("invalid_request"));
    let syntax = app.graphql(Some(&app.token), "{ apiKeys { ", json!({})).await;
    assert_eq!(graphql_error_code(&syntax), Some("invalid_graphql"), "{syntax}");
    let unknown_field = app.graphql(Some(&app.token), "{ apiKeys { nope } }", json!({})).await;
    assert_eq!(
        graphql_error_code(&unknown_field),
        Some("invalid_graphql"),
        "{unknown_field}"
    );
    // The limits that keep one query from unbounded work refuse with codes of their own.
    let deep = format!(
        "{{ __schema {{ queryType {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(40),
        "} ".repeat(40)
    );
    let deep = app.graphql(Some(&app.token), &deep, json!({})).await;
    assert_eq!(graphql_error_code(&deep), Some("query_too_deep"), "{deep}");
    let wide: String = (0..2_000)
        .map(|i| format!("a{i}: apiKeys {{ data {{ id }} }} "))
        .collect();
    let wide = app.graphql(Some(&app.token), &format!("{{ {wide} }}"), json!({})).await;
    assert_eq!(
        graphql_error_code(&wide),
        Some("query_too_complex"),
        "{}",
        wide["errors"]
    );
    assert_eq!(app.event_count().await, before, "nothing written");

    // Another tenant's key does not exist for a tenant admin.
    let acme = app.token_for("acme", "acme admin", &["TENANT_ADMIN"]).await;
    let root_key = app.create_key(json!({ "name": "root's" })).await;
    let peek = app
        .graphql(
            Some(&acme),
            "query($id: String!) { apiKey(id: $id) { name } }",
            json!({ "id": root_key["id"] }),
        )
        .await;
    assert_eq!(graphql_error_code(&peek), Some("not_found"));
    app
}

both!(the_graphql_console_is_served_without_any_cdn, console);
async fn console(app: TestApp) -> TestApp {
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Keyledger GraphQL console"));
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "no external asset"
    );
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
        "console.js",
    ] {
        assert!(html.contains(&format!("/graphql/assets/{asset}")), "{asset} referenced");
        let res = app
            .client
            .get(app.url(&format!("/graphql/assets/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
        let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/"), "{asset}: {content_type}");
        assert!(res.bytes().await.unwrap().len() > 100);
    }
    assert_eq!(
        app.client
            .get(app.url("/graphql/assets/secret.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    app
}

/// The GraphQL schema is a contract too: any change to it shows up here, against the committed
/// `api/schema.graphql`. After an intended change: `KEYLEDGER_UPDATE_SDL=1 cargo test -p
/// keyledger-tests --test e2e the_graphql_schema` rewrites the file, to commit with the change.
#[tokio::test]
async fn the_graphql_schema_is_the_committed_one() {
    let Some(app) = keyledger_tests::spawn_app(keyledger_tests::Backend::Sqlite).await else {
        return;
    };
    let sdl = keyledger_api::graphql::build_schema(app.state.clone()).sdl();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/schema.graphql");
    if std::env::var("KEYLEDGER_UPDATE_SDL").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &sdl).expect("write the SDL");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sdl,
        "the GraphQL schema changed: review and commit it (KEYLEDGER_UPDATE_SDL=1). Now:\n{sdl}"
    );
    app.finish().await;
}
