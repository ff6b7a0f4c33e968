use keyledger_tests::{both, validate_openapi, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn files_endpoint() -> Value {
    json!({
        "methods": ["GET", "HEAD"],
        "path": "/files/{id}",
        "plugin": "Files",
        "description": "Read a file",
        "required_scopes": ["FILES_READ"],
        "response_schema": { "type": "object", "properties": { "id": { "type": "string" } } },
        "upstream_url": "http://files.internal:8080/"
    })
}

both!(superusers_register_and_change_endpoints_with_a_full_history, registry);
async fn registry(app: TestApp) -> TestApp {
    let created = app.register_endpoint(files_endpoint()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["methods"], json!(["GET", "HEAD"]));
    assert_eq!(created["upstream_url"], "http://files.internal:8080", "normalised");
    assert_eq!(
        (created["active"].as_bool(), created["enabled"].as_bool()),
        (Some(true), Some(true))
    );

    // One method of one route belongs to one endpoint; parameter names do not make a new route.
    let clash = app
        .post(
            "/v1/endpoints",
            json!({ "methods": ["get"], "path": "/files/{file_id}/", "plugin": "Files", "upstream_url": "http://x" }),
        )
        .await;
    assert_eq!(
        (clash.status, clash.error_code()),
        (StatusCode::CONFLICT, "endpoint_conflict"),
        "{:?}",
        clash.body
    );
    let delete = app.register_endpoint(json!({ "methods": ["DELETE"], "path": "/files/{file_id}", "plugin": "Files", "required_scopes": ["FILES_DELETE"], "upstream_url": "http://x" })).await;
    assert_eq!(delete["path"], "/files/{file_id}");

    let before = app.event_count().await;
    for (body, code) in [
        (
            json!({ "methods": ["FETCH"], "path": "/a", "plugin": "P", "upstream_url": "http://x" }),
            "invalid_methods",
        ),
        (
            json!({ "methods": [], "path": "/a", "plugin": "P", "upstream_url": "http://x" }),
            "invalid_methods",
        ),
        (
            json!({ "methods": ["GET"], "path": "/a/{id}.json", "plugin": "P", "upstream_url": "http://x" }),
            "invalid_path",
        ),
        (
            json!({ "methods": ["GET"], "path": "a", "plugin": "P", "upstream_url": "http://x" }),
            "invalid_path",
        ),
        (
            json!({ "methods": ["GET"], "path": "/a", "plugin": "", "upstream_url": "http://x" }),
            "invalid_plugin",
        ),
        (
            json!({ "methods": ["GET"], "path": "/a", "plugin": "P", "upstream_url": "ftp://x" }),
            "invalid_upstream_url",
        ),
        (
            json!({ "methods": ["GET"], "path": "/a", "plugin": "P", "upstream_url": "http://x", "required_scopes": ["ADMIN_ACCESS"] }),
            "invalid_scope",
        ),
        (
            json!({ "methods": ["GET"], "path": "/a", "plugin": "P", "upstream_url": "http://x", "request_schema": 5 }),
            "invalid_schema",
        ),
    ] {
        let answer = app.post("/v1/endpoints", body.clone()).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
    assert_eq!(app.event_count().await, before, "refused registrations wrote nothing");

    let changed = app
        .patch(
            &format!("/v1/endpoints/{id}"),
            json!({ "description": "Read a file's metadata", "response_schema": null, "path": "/files/{fid}" }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(
        (changed.body["description"].as_str(), changed.body["path"].as_str()),
        (Some("Read a file's metadata"), Some("/files/{fid}"))
    );
    assert!(changed.body["response_schema"].is_null());
    let reshape = app
        .patch(&format!("/v1/endpoints/{id}"), json!({ "path": "/files/{id}/raw" }))
        .await;
    assert_eq!(reshape.error_code(), "invalid_path");

    let sunset = "2099-01-01T00:00:00Z";
    let deprecated = app
        .post(&format!("/v1/endpoints/{id}/deprecate"), json!({ "sunset": sunset }))
        .await;
    assert_eq!(
        (
            deprecated.body["deprecated"].as_bool(),
            deprecated.body["sunset_at"].as_str()
        ),
        (Some(true), Some("2099-01-01T00:00:00Z"))
    );
    let past = app
        .post(
            &format!("/v1/endpoints/{id}/deprecate"),
            json!({ "sunset": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(past.error_code(), "invalid_sunset");

    let history = app.get(&format!("/v1/endpoints/{id}/history")).await.body;
    let types: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "EndpointRegistered",
            "EndpointChanged",
            "EndpointSchemasChanged",
            "EndpointDeprecated"
        ]
    );
    let audit = app.get("/v1/audit?action=EndpointRegistered").await.body;
    assert_eq!(audit["data"].as_array().unwrap().len(), 2);
    app
}

both!(activation_is_global_and_enablement_is_per_tenant, roles);
async fn roles(app: TestApp) -> TestApp {
    let id = app.register_endpoint(files_endpoint()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let acme_admin = app.token_for("acme", "acme admin", &["TENANT_ADMIN"]).await;
    let acme_reader = app.token_for("acme", "acme reader", &["API_MANAGEMENT_READ"]).await;
    let globex_reader = app.token_for("globex", "globex reader", &["API_MANAGEMENT_READ"]).await;
    let ids = |answer: &keyledger_tests::Answer| -> Vec<String> {
        answer.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };

    // Tenant admins manage their own tenant only, never the registry or global activation.
    for path in [
        format!("/v1/endpoints/{id}/deactivate"),
        format!("/v1/endpoints/{id}/deprecate"),
    ] {
        assert_eq!(
            app.post_as(&acme_admin, &path, json!({})).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        app.post_as(&acme_admin, "/v1/endpoints", files_endpoint()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(&acme_reader, &format!("/v1/endpoints/{id}/disable"), json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(
            &acme_admin,
            &format!("/v1/endpoints/{id}/disable?tenant=globex"),
            json!({})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    let disabled = app
        .post_as(&acme_admin, &format!("/v1/endpoints/{id}/disable"), json!({}))
        .await;
    assert_eq!(
        (disabled.status, disabled.body["enabled"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    assert!(
        disabled.body.get("upstream_url").is_none(),
        "upstreams are for superusers"
    );
    assert!(
        ids(&app.get_as(&acme_reader, "/v1/endpoints").await).is_empty(),
        "disabled for acme"
    );
    assert_eq!(
        app.get_as(&acme_reader, &format!("/v1/endpoints/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ids(&app.get_as(&acme_admin, "/v1/endpoints").await),
        [id.as_str()],
        "admins still see it to re-enable"
    );
    assert_eq!(
        ids(&app.get_as(&globex_reader, "/v1/endpoints").await),
        [id.as_str()],
        "other tenants unaffected"
    );
    app.post_as(&acme_admin, &format!("/v1/endpoints/{id}/enable"), json!({}))
        .await;
    assert_eq!(ids(&app.get_as(&acme_reader, "/v1/endpoints").await), [id.as_str()]);

    // Global deactivation hides it from everyone but superusers.
    let off = app.post(&format!("/v1/endpoints/{id}/deactivate"), json!({})).await;
    assert_eq!(off.body["active"], false);
    assert!(ids(&app.get_as(&acme_admin, "/v1/endpoints").await).is_empty());
    assert_eq!(ids(&app.get("/v1/endpoints?status=inactive").await), [id.as_str()]);
    assert!(ids(&app.get("/v1/endpoints?status=active").await).is_empty());
    assert_eq!(
        app.get_as(&acme_admin, "/v1/endpoints?status=inactive").await.status,
        StatusCode::FORBIDDEN
    );
    app.post(&format!("/v1/endpoints/{id}/activate"), json!({})).await;
    assert_eq!(ids(&app.get_as(&globex_reader, "/v1/endpoints").await), [id]);
    app
}

both!(the_explorer_searches_filters_and_pages_the_catalogue, explorer);
async fn explorer(app: TestApp) -> TestApp {
    let total = app.import_demo().await;
    assert!(total >= 30, "demo catalogue covers the plugins: {total}");
    let data = |answer: keyledger_tests::Answer| answer.body["data"].as_array().unwrap().clone();

    let chat = data(app.get("/v1/endpoints?plugin=chat&limit=200").await);
    assert!(chat.len() >= 5 && chat.iter().all(|e| e["plugin"] == "Chat"));
    let search = data(app.get("/v1/endpoints?q=DOWNLOAD").await);
    assert_eq!(search.len(), 1);
    assert_eq!(search[0]["path"], "/files/{id}/download");
    let by_description = data(app.get("/v1/endpoints?q=semantic%20search").await);
    assert_eq!(by_description[0]["path"], "/files/{id}/embed");
    let literal = data(app.get("/v1/endpoints?q=100%25_").await);
    assert!(literal.is_empty(), "wildcards in a search are literal");
    let deletes = data(app.get("/v1/endpoints?method=delete&limit=200").await);
    assert!(
        !deletes.is_empty()
            && deletes
                .iter()
                .all(|e| e["methods"].as_array().unwrap().contains(&json!("DELETE")))
    );
    let deprecated = data(app.get("/v1/endpoints?deprecated=true").await);
    assert_eq!(deprecated.len(), 1);
    assert_eq!(deprecated[0]["path"], "/agents/{agent_id}/legacy-run");

    // Paging walks every endpoint once, in path order.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut url = "/v1/endpoints?limit=7".to_owned();
    loop {
        let page = app.get(&url).await;
        assert_eq!(page.status, StatusCode::OK);
        for e in page.body["data"].as_array().unwrap() {
            seen.push((
                e["path"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/endpoints?limit=7&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, total);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(app.get("/v1/endpoints?cursor=zz").await.error_code(), "invalid_cursor");
    assert_eq!(
        app.get("/v1/endpoints?method=FETCH").await.error_code(),
        "invalid_methods"
    );
    app
}

const DOC: &str = r##"
openapi: 3.0.3
info: { title: Reports, version: "1" }
security: [ { oauth: [REPORTS_READ, "reports:legacy"] } ]
paths:
  /reports/{id}:
    get:
      summary: Get a report
      responses:
        "200":
          description: ok
          content: { application/json: { schema: { $ref: "#/components/schemas/Report" } } }
    put:
      summary: Replace a report
      x-keyledger-scopes: [REPORTS_WRITE]
      requestBody: { content: { application/json: { schema: { $ref: "#/components/schemas/Report" } } } }
      responses: { "200": { description: ok } }
components:
  schemas:
    Report:
      type: object
      properties:
        id: { type: string }
        parent: { $ref: "#/components/schemas/Report" }
"##;

both!(importing_an_openapi_document_is_idempotent, import);
async fn import(app: TestApp) -> TestApp {
    let first = app.import("Reports", "https://reports.internal", DOC).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(
        (first.body["registered"].as_u64(), first.body["unchanged"].as_u64()),
        (Some(2), Some(0))
    );
    let listed = app.get("/v1/endpoints?plugin=Reports").await.body;
    let get = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["methods"] == json!(["GET"]))
        .unwrap()
        .clone();
    assert_eq!(
        get["required_scopes"],
        json!(["REPORTS_READ"]),
        "catalogue scopes from security"
    );
    assert_eq!(
        get["response_schema"]["properties"]["id"]["type"], "string",
        "$ref inlined"
    );
    assert!(get["response_schema"]["properties"]["parent"]["description"]
        .as_str()
        .unwrap()
        .contains("recursive"));

    let events = app.event_count().await;
    let again = app.import("Reports", "https://reports.internal", DOC).await;
    assert_eq!(
        (again.body["registered"].as_u64(), again.body["unchanged"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(app.event_count().await, events, "re-import writes nothing");

    let edited = DOC.replace("summary: Get a report", "summary: Fetch a report");
    let third = app.import("Reports", "https://reports.internal", &edited).await;
    assert_eq!(
        (third.body["changed"].as_u64(), third.body["unchanged"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(app.event_count().await, events + 1, "one change event");

    let json_doc = serde_json::json!({
        "openapi": "3.1.0", "info": { "title": "x", "version": "1" },
        "paths": { "/bots": { "post": { "summary": "Create a bot", "x-keyledger-scopes": ["BOTS_CREATE"], "responses": {} } } }
    });
    let from_json = app.import("Bots", "http://bots", &json_doc.to_string()).await;
    assert_eq!(from_json.body["registered"].as_u64(), Some(1));

    let before = app.event_count().await;
    for (doc, code) in [
        ("openapi: 2.0\npaths: {}", "invalid_openapi"),
        ("{ not json", "invalid_openapi"),
        (
            "openapi: 3.1.0\npaths:\n  /ok: { get: { responses: {} } }\n  /bad/{x}.y: { get: { responses: {} } }",
            "invalid_openapi",
        ),
        (
            "openapi: 3.1.0\npaths:\n  /a: { get: { x-keyledger-scopes: [NOPE], responses: {} } }",
            "invalid_openapi",
        ),
        ("openapi: 3.1.0\npaths: {}", "invalid_openapi"),
    ] {
        let answer = app.import("Bad", "http://bad", doc).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::BAD_REQUEST, code),
            "{doc}: {:?}",
            answer.body
        );
    }
    assert_eq!(
        app.import("Bad", "ftp://bad", DOC).await.error_code(),
        "invalid_upstream_url"
    );
    assert_eq!(
        app.event_count().await,
        before,
        "a document with problems imports nothing"
    );
    app
}

both!(
    the_tenant_openapi_document_covers_exactly_its_enabled_endpoints_and_validates,
    tenant_document
);
async fn tenant_document(app: TestApp) -> TestApp {
    app.import_demo().await;
    let acme_admin = app.token_for("acme", "acme admin", &["TENANT_ADMIN"]).await;
    let listed = app.get("/v1/endpoints?q=upload").await.body;
    let upload_id = listed["data"][0]["id"].as_str().unwrap().to_owned();
    app.post_as(&acme_admin, &format!("/v1/endpoints/{upload_id}/disable"), json!({}))
        .await;

    let doc = app.get_as(&acme_admin, "/v1/openapi/tenant.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "https://api.keyledger.test");
    assert!(doc["paths"]["/files"].get("post").is_none(), "disabled for acme");
    assert!(doc["paths"]["/files"].get("get").is_some());
    let download = &doc["paths"]["/files/{id}/download"]["get"];
    assert_eq!(
        download["parameters"][0],
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } })
    );
    assert_eq!(download["x-keyledger-required-scopes"], json!(["FILES_DOWNLOAD"]));
    assert_eq!(
        doc["paths"]["/agents/{agent_id}/legacy-run"]["post"]["deprecated"],
        true
    );
    assert_eq!(doc["components"]["securitySchemes"]["apiKeyAuth"]["name"], "X-API-Key");
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    let enabled = app.get_as(&acme_admin, "/v1/endpoints?limit=200").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["enabled"] == true)
        .map(|e| e["methods"].as_array().unwrap().len())
        .sum::<usize>();
    assert_eq!(operations, enabled);

    // The superuser's own tenant still has the upload endpoint.
    let root_doc = app.get("/v1/openapi/tenant.json").await.body;
    assert!(root_doc["paths"]["/files"].get("post").is_some());

    let yaml = app
        .client
        .get(app.url("/v1/openapi/tenant.yaml"))
        .bearer_auth(&acme_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(yaml.headers()["content-type"], "application/yaml");
    let yaml = yaml.text().await.unwrap();
    assert!(yaml.contains("openapi:") && yaml.contains("/files/{id}/download"));

    validate_openapi("tenant.json", &doc.to_string());
    validate_openapi("tenant.yaml", &yaml);
    let admin_api = app
        .request(reqwest::Method::GET, "/openapi.json", None, None)
        .await
        .body;
    validate_openapi("admin-api.json", &admin_api.to_string());
    app
}

both!(graphql_explores_and_manages_the_registry, graphql);
async fn graphql(app: TestApp) -> TestApp {
    let token = app.token.clone();
    let registered = app
        .graphql(
            Some(&token),
            r#"mutation($input: RegisterEndpointInput!) { registerEndpoint(input: $input) { id path methods enabled } }"#,
            json!({ "input": { "methods": ["POST"], "path": "/chat/sessions", "plugin": "Chat", "requiredScopes": ["CHAT_WRITE"], "upstreamUrl": "http://chat" } }),
        )
        .await;
    assert!(registered["errors"].is_null(), "{registered}");
    let id = registered["data"]["registerEndpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let disabled = app
        .graphql(
            Some(&token),
            "mutation($id: String!) { setEndpointEnabled(id: $id, enabled: false, tenant: \"acme\") { enabled } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(disabled["data"]["setEndpointEnabled"]["enabled"], false, "{disabled}");
    let imported = app
        .graphql(
            Some(&token),
            "mutation($doc: String!) { importEndpoints(document: $doc, plugin: \"Reports\", upstream: \"http://reports\") { registered operations { method path outcome } } }",
            json!({ "doc": DOC }),
        )
        .await;
    assert_eq!(imported["data"]["importEndpoints"]["registered"], 2, "{imported}");
    let explored = app
        .graphql(
            Some(&token),
            "{ endpoints(q: \"report\") { data { path methods } nextCursor } }",
            json!({}),
        )
        .await;
    assert_eq!(explored["data"]["endpoints"]["data"].as_array().unwrap().len(), 2);
    let doc = app.graphql(Some(&token), "{ tenantOpenapi }", json!({})).await;
    assert_eq!(doc["data"]["tenantOpenapi"]["openapi"], "3.1.0");
    let sdk = app
        .graphql(
            Some(&token),
            "{ sdk(language: \"curl\") { filename contentBase64 } }",
            json!({}),
        )
        .await;
    assert_eq!(sdk["data"]["sdk"]["filename"], "keyledger-client-curl.zip", "{sdk}");
    assert!(
        sdk["data"]["sdk"]["contentBase64"]
            .as_str()
            .unwrap()
            .starts_with("UEsDB"),
        "a ZIP (PK\\3\\4)"
    );
    let cobol = app
        .graphql(Some(&token), "{ sdk(language: \"cobol\") { filename } }", json!({}))
        .await;
    assert_eq!(keyledger_tests::graphql_error_code(&cobol), Some("not_found"));
    let reader = app.token_for("default", "reader", &["API_MANAGEMENT_READ"]).await;
    let refused = app
        .graphql(
            Some(&reader),
            "mutation($id: String!) { setEndpointActive(id: $id, active: false) { active } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(keyledger_tests::graphql_error_code(&refused), Some("forbidden"));
    app
}

both!(the_explorer_tests_an_endpoint_as_a_chosen_key, try_it);
async fn try_it(app: TestApp) -> TestApp {
    let upstream = keyledger_tests::spawn_upstream().await;
    let get = app
        .register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "required_scopes": ["FILES_READ"], "upstream_url": format!("{upstream}/api") }))
        .await;
    let post = app
        .register_endpoint(json!({ "methods": ["POST"], "path": "/files", "plugin": "Files", "required_scopes": ["FILES_UPLOAD"], "upstream_url": format!("{upstream}/api") }))
        .await;
    let key = app
        .create_key(json!({ "name": "explorer", "scopes": ["FILES_READ"] }))
        .await;
    let try_path = |e: &Value| format!("/v1/endpoints/{}/test", e["id"].as_str().unwrap());

    let answer = app
        .post(
            &try_path(&get),
            json!({ "path_params": { "id": "a b/c" }, "query": { "v": "1 2" }, "key_id": key["id"] }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let r = &answer.body;
    assert_eq!(
        (r["status"].as_u64(), r["via"].as_str(), r["method"].as_str()),
        (Some(200), Some("upstream"), Some("GET"))
    );
    assert_eq!(
        r["body"]["path"], "/api/files/a%20b%2Fc",
        "path parameters are encoded into one segment"
    );
    assert_eq!(r["body"]["query"], "v=1+2");
    let headers = &r["body"]["headers"];
    assert_eq!(headers["x-keyledger-key-id"], key["id"]);
    assert_eq!(headers["x-keyledger-scopes"], "FILES_READ");
    assert_eq!(headers["x-keyledger-tenant"], "default");
    assert!(
        headers.get("authorization").is_none(),
        "neither the admin token nor a key goes upstream"
    );
    assert!(r["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(r["warnings"].as_array().unwrap().is_empty(), "{r}");

    // A pasted key is checked and stands for the same identity; it is not forwarded.
    let pasted = app
        .post(
            &try_path(&get),
            json!({ "path_params": { "id": "1" }, "key": key["key"] }),
        )
        .await;
    assert_eq!(pasted.body["body"]["headers"]["x-keyledger-key-id"], key["id"]);
    assert!(!pasted.body.to_string().contains(key["key"].as_str().unwrap()));
    let mut wrong = key["key"].as_str().unwrap().to_owned();
    wrong.replace_range(20..21, if &wrong[20..21] == "A" { "B" } else { "A" });
    assert_eq!(
        app.post(&try_path(&get), json!({ "path_params": { "id": "1" }, "key": wrong }))
            .await
            .error_code(),
        // Not the edge's `invalid_key`: that code answers 401, and a code has one status.
        "invalid_test_key"
    );

    // A POST with a body; the key lacks the scope, which the answer says.
    let created = app
        .post(
            &try_path(&post),
            json!({ "body": { "name": "a.txt" }, "key_id": key["id"] }),
        )
        .await;
    assert_eq!(created.body["body"]["body"], json!({ "name": "a.txt" }));
    assert!(created.body["warnings"][0].as_str().unwrap().contains("FILES_UPLOAD"));

    assert_eq!(
        app.post(&try_path(&get), json!({})).await.error_code(),
        "missing_path_param"
    );
    assert_eq!(
        app.post(&try_path(&get), json!({ "path_params": { "id": "1" }, "body": {} }))
            .await
            .error_code(),
        "invalid_body"
    );
    assert_eq!(
        app.post(
            &try_path(&get),
            json!({ "method": "DELETE", "path_params": { "id": "1" } })
        )
        .await
        .error_code(),
        "invalid_methods"
    );
    let reader = app.token_for("default", "reader", &["API_MANAGEMENT_READ"]).await;
    assert_eq!(
        app.post_as(&reader, &try_path(&post), json!({})).await.status,
        StatusCode::FORBIDDEN,
        "writes need WRITE"
    );
    assert_eq!(
        app.post_as(&reader, &try_path(&get), json!({ "path_params": { "id": "1" } }))
            .await
            .status,
        StatusCode::OK
    );
    let acme = app.token_for("acme", "acme writer", &["API_MANAGEMENT_WRITE"]).await;
    let foreign = app
        .post_as(
            &acme,
            &try_path(&get),
            json!({ "path_params": { "id": "1" }, "key_id": key["id"] }),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "another tenant's key");

    let big = app
        .register_endpoint(json!({ "methods": ["GET"], "path": "/big", "plugin": "Files", "upstream_url": upstream }))
        .await;
    let answer = app.post(&try_path(&big), json!({})).await;
    assert_eq!(
        (
            answer.body["truncated"].as_bool(),
            answer.body["body"].as_str().map(str::len)
        ),
        (Some(true), Some(1024 * 1024))
    );

    let down = app
        .register_endpoint(
            json!({ "methods": ["GET"], "path": "/down", "plugin": "Files", "upstream_url": "http://127.0.0.1:9" }),
        )
        .await;
    let answer = app.post(&try_path(&down), json!({})).await;
    assert_eq!(
        (answer.status, answer.error_code()),
        (StatusCode::BAD_GATEWAY, "upstream_unreachable")
    );
    app
}
