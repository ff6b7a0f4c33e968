//! The auth edge over HTTP: every status and code of DESIGN.md §7, both header styles, IP rules,
//! scopes, endpoint states, deprecation headers, rotation and revocation, rate limits.

use keyledger_tests::{both, eventually, spawn_upstream, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An upstream with GET /files/{id} (FILES_READ) and DELETE /files/{id} (FILES_DELETE).
async fn platform(app: &TestApp) -> (String, String) {
    let upstream = spawn_upstream().await;
    let read = app
        .register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "required_scopes": ["FILES_READ"], "upstream_url": format!("{upstream}/api") }))
        .await;
    app.register_endpoint(json!({ "methods": ["DELETE"], "path": "/files/{id}", "plugin": "Files", "required_scopes": ["FILES_DELETE"], "upstream_url": format!("{upstream}/api") }))
        .await;
    (upstream, read["id"].as_str().unwrap().to_owned())
}

fn key_of(created: &Value) -> String {
    created["key"].as_str().unwrap().to_owned()
}

fn code(a: &keyledger_tests::Answer) -> &str {
    a.error_code()
}

both!(a_valid_key_is_proxied_with_identity_headers_and_without_the_key, proxy);
async fn proxy(app: TestApp) -> TestApp {
    platform(&app).await;
    let created = app
        .create_key(json!({ "name": "reader", "scopes": ["FILES_READ"] }))
        .await;
    let key = key_of(&created);

    let ok = app
        .edge_request(
            Method::GET,
            "/files/a%20b?x=1",
            Some(&key),
            &[("x-keyledger-tenant", "spoofed")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["path"], "/api/files/a%20b");
    assert_eq!(ok.body["query"], "x=1");
    let upstream_saw = &ok.body["headers"];
    assert_eq!(upstream_saw["x-keyledger-key-id"], created["id"]);
    assert_eq!(
        upstream_saw["x-keyledger-tenant"], "default",
        "a client's own identity header is replaced"
    );
    assert_eq!(upstream_saw["x-keyledger-scopes"], "FILES_READ");
    assert!(
        upstream_saw.get("authorization").is_none(),
        "the key never reaches the upstream"
    );
    assert_eq!(upstream_saw["x-forwarded-for"], "127.0.0.1");
    assert_eq!(ok.headers["x-ratelimit-limit"], "60");
    assert_eq!(ok.headers["x-ratelimit-remaining"], "59");
    assert_eq!(
        ok.headers["ratelimit-policy"],
        "\"minute\";q=60;w=60, \"hour\";q=3600;w=3600"
    );

    // The edge's own routes live under /_keyledger/, so a platform's /ping is proxied.
    assert_eq!(
        app.edge_request(Method::GET, "/_keyledger/ping", None, &[])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.edge_request(Method::GET, "/_keyledger/healthz", None, &[])
            .await
            .body["status"],
        "ok"
    );
    let ping = app.edge_request(Method::GET, "/ping", Some(&key), &[]).await;
    assert_eq!(
        ping.error_code(),
        "endpoint_not_found",
        "no /ping registered: checked like any path"
    );

    // The other header style.
    let by_header = app
        .edge_request(Method::GET, "/files/1", None, &[("x-api-key", key.as_str())])
        .await;
    assert_eq!(by_header.status, StatusCode::OK);
    assert!(by_header.body["headers"].get("x-api-key").is_none());
    app
}

both!(every_refusal_has_its_status_and_code, refusals);
async fn refusals(app: TestApp) -> TestApp {
    platform(&app).await;
    let key = key_of(
        &app.create_key(json!({ "name": "reader", "scopes": ["FILES_READ"] }))
            .await,
    );

    let missing = app.edge_request(Method::GET, "/files/1", None, &[]).await;
    assert_eq!(
        (missing.status, code(&missing)),
        (StatusCode::UNAUTHORIZED, "invalid_key")
    );
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    for bad in ["ak_live_short", "sk_live_0000", "", "Basic abc"] {
        let answer = app.edge_get("/files/1", bad).await;
        assert_eq!(
            (answer.status, code(&answer)),
            (StatusCode::UNAUTHORIZED, "invalid_key"),
            "{bad}"
        );
    }
    // Well-formed, right checksum, but no such key.
    let unknown = keyledger_commands::secrets::generate_key(keyledger_domain::key_format::Environment::Live);
    assert_eq!(code(&app.edge_get("/files/1", unknown.expose()).await), "invalid_key");
    // The right lookup id with another secret: the checksum catches a typo, a forged checksum
    // fails the verifier.
    let forged = keyledger_domain::key_format::PlaintextKey::compose(
        keyledger_domain::key_format::Environment::Live,
        keyledger_domain::key_format::LookupId::try_from(key[8..20].to_owned()).unwrap(),
        "000000000000000000000000",
    )
    .unwrap();
    assert_eq!(code(&app.edge_get("/files/1", forged.expose()).await), "invalid_key");
    assert_eq!(
        code(&app.edge_get("/files/1", forged.expose()).await),
        "invalid_key",
        "the edge remembers that no verifier is stored, and still refuses"
    );
    assert_eq!(
        app.edge_get("/files/1", &key).await.status,
        StatusCode::OK,
        "the real secret still works after forged ones"
    );

    let scope = app.edge_request(Method::DELETE, "/files/1", Some(&key), &[]).await;
    assert_eq!(
        (scope.status, code(&scope)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    let nowhere = app.edge_get("/nothing/here", &key).await;
    assert_eq!(
        (nowhere.status, code(&nowhere)),
        (StatusCode::NOT_FOUND, "endpoint_not_found")
    );
    let method = app.edge_request(Method::PUT, "/files/1", Some(&key), &[]).await;
    assert_eq!(code(&method), "endpoint_not_found");
    app
}

both!(revocation_expiry_and_rotation_reach_the_edge_at_once, lifecycle);
async fn lifecycle(app: TestApp) -> TestApp {
    platform(&app).await;
    let created = app.create_key(json!({ "name": "k", "scopes": ["FILES_READ"], "expires_at": (app.clock_now() + chrono::Duration::days(1)).to_rfc3339() })).await;
    let (id, old) = (created["id"].as_str().unwrap().to_owned(), key_of(&created));
    assert_eq!(app.edge_get("/files/1", &old).await.status, StatusCode::OK);

    // Rotation with a one-hour grace: both secrets work, then only the new one.
    let new = rotate_with_an_hours_grace(&app, &id).await;
    both_secrets_then_only_the_new(&app, &old, &new).await;

    // Past its expiry the key is refused even before the scheduler records it.
    app.clock.advance(chrono::Duration::days(1));
    let expired = app.edge_get("/files/1", &new).await;
    assert_eq!(
        (expired.status, code(&expired)),
        (StatusCode::UNAUTHORIZED, "key_expired")
    );

    // Revocation: the next request is refused (the admin answer waits for this node's edge).
    let other = app
        .create_key(json!({ "name": "other", "scopes": ["FILES_READ"] }))
        .await;
    let other_key = key_of(&other);
    assert_eq!(app.edge_get("/files/1", &other_key).await.status, StatusCode::OK);
    app.post(&format!("/v1/keys/{}/revoke", other["id"].as_str().unwrap()), json!({}))
        .await;
    let revoked = app.edge_get("/files/1", &other_key).await;
    assert_eq!(
        (revoked.status, code(&revoked)),
        (StatusCode::UNAUTHORIZED, "key_revoked")
    );
    app
}

both!(ip_rules_scopes_and_endpoint_states_are_enforced, rules);
async fn rules(app: TestApp) -> TestApp {
    let (_, read_id) = platform(&app).await;
    let allow_v6 = key_of(
        &app.create_key(json!({ "name": "v6", "scopes": ["FILES_READ"], "ip_allow": ["2001:db8::/32"] }))
            .await,
    );
    let blocked = key_of(
        &app.create_key(json!({ "name": "blocked", "scopes": ["FILES_READ"], "ip_block": ["10.1.0.0/16"] }))
            .await,
    );

    // The test's edge trusts 127.0.0.1 as a proxy, so X-Forwarded-For names the client.
    let v6_ok = app
        .edge_request(
            Method::GET,
            "/files/1",
            Some(&allow_v6),
            &[("x-forwarded-for", "2001:db8::7")],
        )
        .await;
    assert_eq!(v6_ok.status, StatusCode::OK);
    assert_eq!(v6_ok.body["headers"]["x-forwarded-for"], "2001:db8::7, 127.0.0.1");
    let v6_no = app
        .edge_request(
            Method::GET,
            "/files/1",
            Some(&allow_v6),
            &[("x-forwarded-for", "2001:db9::7")],
        )
        .await;
    assert_eq!((v6_no.status, code(&v6_no)), (StatusCode::FORBIDDEN, "ip_forbidden"));
    let v4_no = app.edge_request(Method::GET, "/files/1", Some(&allow_v6), &[]).await;
    assert_eq!(code(&v4_no), "ip_forbidden", "127.0.0.1 is not in 2001:db8::/32");
    let spoof_chain = app
        .edge_request(
            Method::GET,
            "/files/1",
            Some(&blocked),
            &[("x-forwarded-for", "10.1.2.3, 127.0.0.1")],
        )
        .await;
    assert_eq!(
        code(&spoof_chain),
        "ip_forbidden",
        "the right-most untrusted address counts"
    );
    assert_eq!(
        app.edge_request(
            Method::GET,
            "/files/1",
            Some(&blocked),
            &[("x-forwarded-for", "10.2.0.1")]
        )
        .await
        .status,
        StatusCode::OK
    );

    // Disabled for the tenant, then deactivated globally: 404 either way.
    let key = key_of(&app.create_key(json!({ "name": "k", "scopes": ["FILES_READ"] })).await);
    app.post(&format!("/v1/endpoints/{read_id}/disable"), json!({})).await;
    let disabled = app.edge_get("/files/1", &key).await;
    assert_eq!(
        (disabled.status, code(&disabled)),
        (StatusCode::NOT_FOUND, "endpoint_not_found")
    );
    app.post(&format!("/v1/endpoints/{read_id}/enable"), json!({})).await;
    assert_eq!(app.edge_get("/files/1", &key).await.status, StatusCode::OK);
    app.post(&format!("/v1/endpoints/{read_id}/deactivate"), json!({}))
        .await;
    assert_eq!(code(&app.edge_get("/files/1", &key).await), "endpoint_not_found");
    app.post(&format!("/v1/endpoints/{read_id}/activate"), json!({})).await;

    // Deprecation headers (RFC 9745, RFC 8594).
    app.post(
        &format!("/v1/endpoints/{read_id}/deprecate"),
        json!({ "sunset": "2099-01-01T00:00:00Z" }),
    )
    .await;
    let deprecated = app.edge_get("/files/1", &key).await;
    assert_eq!(deprecated.status, StatusCode::OK);
    assert!(deprecated.headers["deprecation"].to_str().unwrap().starts_with('@'));
    assert_eq!(deprecated.headers["sunset"], "Thu, 01 Jan 2099 00:00:00 GMT");

    // Scope edits reach the edge too.
    let id = app.get("/v1/keys?limit=1").await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(&format!("/v1/keys/{id}"), json!({ "scopes": ["FILES_DELETE"] }))
        .await;
    assert_eq!(code(&app.edge_get("/files/1", &key).await), "insufficient_scope");
    assert_eq!(
        app.edge_request(Method::DELETE, "/files/1", Some(&key), &[])
            .await
            .status,
        StatusCode::OK
    );
    app
}

both!(rate_limits_count_down_and_refuse_honestly, rate_limits);
async fn rate_limits(app: TestApp) -> TestApp {
    platform(&app).await;
    let key = key_of(
        &app.create_key(json!({ "name": "slow", "scopes": ["FILES_READ"], "rate_limits": { "per_minute": 3 } }))
            .await,
    );
    for remaining in ["2", "1", "0"] {
        let answer = app.edge_get("/files/1", &key).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers["x-ratelimit-remaining"], remaining);
    }
    let refused = app.edge_get("/files/1", &key).await;
    assert_eq!(
        (refused.status, code(&refused)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let retry: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (19..=20).contains(&retry),
        "3 per minute refills one every 20 s: {retry}"
    );
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
    assert_eq!(
        refused.headers["ratelimit"],
        format!("\"minute\";r=0;t={retry}").as_str()
    );

    // 200 concurrent requests against 60 per minute: exactly the quota passes (GCRA refills one
    // per second, so a run that takes longer lets one more through per second elapsed).
    let hot = key_of(
        &app.create_key(json!({ "name": "hot", "scopes": ["FILES_READ"], "rate_limits": { "per_minute": 60 } }))
            .await,
    );
    let started = std::time::Instant::now();
    let calls = (0..200).map(|_| {
        let (client, url, key) = (app.client.clone(), app.edge_url("/files/1"), hot.clone());
        tokio::spawn(async move { client.get(url).bearer_auth(key).send().await.unwrap().status() })
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let elapsed = started.elapsed().as_secs();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count() as u64;
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count() as u64;
    assert_eq!(ok + limited, 200);
    assert!(ok >= 60 && ok <= 60 + elapsed, "{ok} passed in {elapsed} s");
    app
}

both!(
    forward_auth_answers_proxies_the_way_nginx_traefik_and_envoy_ask,
    forward_auth
);
async fn forward_auth(app: TestApp) -> TestApp {
    platform(&app).await;
    let created = app
        .create_key(json!({ "name": "fa", "scopes": ["FILES_READ"], "rate_limits": { "per_minute": 2 } }))
        .await;
    let key = key_of(&created);
    let bearer = format!("Bearer {key}");

    // nginx auth_request.
    let ok = app
        .edge_request(
            Method::GET,
            "/auth",
            None,
            &[
                ("authorization", &bearer),
                ("x-original-method", "GET"),
                ("x-original-uri", "/files/9?x=1"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert_eq!(ok.headers["x-keyledger-key-id"], created["id"].as_str().unwrap());
    assert_eq!(ok.headers["x-keyledger-scopes"], "FILES_READ");
    assert_eq!(ok.headers["x-ratelimit-remaining"], "1");
    // Traefik ForwardAuth.
    let scope = app
        .edge_request(
            Method::GET,
            "/auth",
            None,
            &[
                ("x-api-key", &key),
                ("x-forwarded-method", "DELETE"),
                ("x-forwarded-uri", "/files/9"),
            ],
        )
        .await;
    assert_eq!(
        (scope.status, code(&scope)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    // Envoy ext_authz: the original request under /auth.
    let envoy = app.edge_request(Method::GET, "/auth/files/9", Some(&key), &[]).await;
    assert_eq!(envoy.status, StatusCode::NO_CONTENT);
    let limited = app.edge_request(Method::GET, "/auth/files/9", Some(&key), &[]).await;
    assert_eq!(
        (limited.status, code(&limited)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(limited.headers.contains_key("retry-after") && limited.headers.contains_key("ratelimit-policy"));
    let none = app
        .edge_request(Method::GET, "/auth", None, &[("x-original-uri", "/files/9")])
        .await;
    assert_eq!((none.status, code(&none)), (StatusCode::UNAUTHORIZED, "invalid_key"));
    app
}

both!(the_verify_api_gives_services_a_verdict, verify);
async fn verify(app: TestApp) -> TestApp {
    platform(&app).await;
    let created = app
        .create_key(json!({ "name": "v", "scopes": ["FILES_READ"], "ip_allow": ["10.0.0.0/8"] }))
        .await;
    let key = key_of(&created);
    let service = app.token_for("default", "service", &["API_MANAGEMENT_READ"]).await;
    let ask = |body: Value, token: String| {
        let (client, url) = (app.client.clone(), app.edge_url("/v1/keys/verify"));
        async move {
            let res = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, v) = ask(
        json!({ "key": key, "method": "GET", "path": "/files/1", "ip": "10.1.2.3" }),
        service.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (v["valid"].as_bool(), v["code"].as_str()),
        (Some(true), Some("VALID")),
        "{v}"
    );
    assert_eq!(v["key_id"], created["id"]);
    assert_eq!(
        (v["tenant"].as_str(), v["scopes"].clone()),
        (Some("default"), json!(["FILES_READ"]))
    );
    assert_eq!(v["ratelimit"]["limit"], 60);
    for (body, expected) in [
        (json!({ "key": "nope" }), "INVALID_KEY"),
        (json!({ "key": key, "scopes": ["FILES_WRITE"] }), "INSUFFICIENT_SCOPE"),
        (
            json!({ "key": key, "method": "GET", "path": "/elsewhere" }),
            "ENDPOINT_NOT_FOUND",
        ),
        (json!({ "key": key, "ip": "192.168.0.1" }), "IP_FORBIDDEN"),
        (json!({ "key": key, "scopes": ["FILES_READ"] }), "VALID"),
    ] {
        let (_, v) = ask(body.clone(), service.clone()).await;
        assert_eq!(v["code"], expected, "{body}: {v}");
        assert_eq!(v["valid"], expected == "VALID");
    }
    app.post(
        &format!("/v1/keys/{}/revoke", created["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    assert_eq!(
        ask(json!({ "key": key }), service.clone()).await.1["code"],
        "KEY_REVOKED"
    );
    let slow = key_of(
        &app.create_key(json!({ "name": "slow", "rate_limits": { "per_minute": 1 } }))
            .await,
    );
    assert_eq!(ask(json!({ "key": slow }), service.clone()).await.1["code"], "VALID");
    let (_, limited) = ask(json!({ "key": slow }), service.clone()).await;
    assert_eq!(
        (limited["code"].as_str(), limited["ratelimit"]["remaining"].as_u64()),
        (Some("RATE_LIMITED"), Some(0))
    );

    // Another tenant's service sees another tenant's key as unknown.
    let acme = app.token_for("acme", "acme service", &["API_MANAGEMENT_READ"]).await;
    let other = key_of(&app.create_key(json!({ "name": "root's" })).await);
    assert_eq!(
        ask(json!({ "key": other }), acme).await.1,
        json!({ "valid": false, "code": "INVALID_KEY" })
    );
    let (status, body) = ask(json!({ "key": other }), "kla_not_a_token_000000000000000000".into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );

    // Bad questions get a 400 that says what is wrong, not a verdict.
    for (body, code) in [
        (
            json!({ "key": key, "method": "FETCH", "path": "/files/1" }),
            "invalid_methods",
        ),
        (json!({ "key": key, "method": "GET" }), "invalid_request"),
        (json!({ "key": key, "path": "/files/1" }), "invalid_request"),
        (json!({ "key": key, "colour": "red" }), "invalid_json"),
    ] {
        let (status, answer) = ask(body.clone(), service.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}: {answer}"
        );
        assert!(
            !answer["error"]["message"].as_str().unwrap_or_default().is_empty(),
            "{answer}"
        );
    }
    let res = app
        .client
        .post(app.edge_url("/v1/keys/verify"))
        .bearer_auth(&service)
        .header("content-type", "application/json")
        .body("{\"key\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "invalid_json");
    app
}

both!(every_decision_is_recorded_and_nothing_is_lost_at_shutdown, usage);
async fn usage(app: TestApp) -> TestApp {
    let (_, read_endpoint) = platform(&app).await;
    let started_ms = chrono::Utc::now().timestamp_millis();
    let created = app
        .create_key(json!({ "name": "used", "scopes": ["FILES_READ"] }))
        .await;
    let key = key_of(&created);
    // Process-wide counters (other tests decide too): at least this test's decisions are added.
    let decisions = |code: &'static str| {
        let app = &app;
        async move {
            app.counter(&format!("keyledger_edge_decisions_total{{code=\"{code}\"}}"))
                .await
        }
    };
    let (valid_before, scope_before) = (decisions("VALID").await, decisions("insufficient_scope").await);
    for _ in 0..7 {
        assert_eq!(app.edge_get("/files/1", &key).await.status, StatusCode::OK);
    }
    for _ in 0..3 {
        assert_eq!(
            app.edge_request(Method::DELETE, "/files/1", Some(&key), &[])
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }
    app.edge_get("/files/1", "ak_live_garbage").await;
    // The usage writer counts decisions as it takes their records, every 100 ms.
    eventually("the decisions were never counted", || async {
        decisions("VALID").await >= valid_before + 7 && decisions("insufficient_scope").await >= scope_before + 3
    })
    .await;
    // Stop at once: the writer must flush what it holds.
    let db = app.stop().await;
    let app = keyledger_tests::start(db, Default::default()).await;
    type Row = (
        String,
        i64,
        String,
        Option<String>,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let logged = |app: &TestApp| {
        let pool = app.state.db.pool().clone();
        async move {
            sqlx::query_as::<_, Row>(
                "SELECT method, status, code, client_ip, at_ms, tenant, key_id, endpoint_id, plugin \
                 FROM usage_log ORDER BY batch_id, seq",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let rows = logged(&app).await;
    let key_id = created["id"].as_str().unwrap();
    assert_eq!(rows.len(), 11, "{rows:?}");
    assert!(rows.iter().all(|r| r.3.as_deref() == Some("127.0.0.1")), "{rows:?}");
    let now_ms = chrono::Utc::now().timestamp_millis();
    assert!(rows.iter().all(|r| (started_ms..=now_ms).contains(&r.4)), "{rows:?}");
    let valid: Vec<&Row> = rows.iter().filter(|r| r.2 == "VALID" && r.1 == 200).collect();
    assert_eq!(valid.len(), 7);
    for r in valid {
        assert_eq!(
            (r.5.as_deref(), r.6.as_deref(), r.7.as_deref(), r.8.as_deref()),
            (
                Some("default"),
                Some(key_id),
                Some(read_endpoint.as_str()),
                Some("Files")
            ),
            "what an allowed request was about"
        );
    }
    let refused: Vec<&Row> = rows
        .iter()
        .filter(|r| r.2 == "insufficient_scope" && r.1 == 403)
        .collect();
    assert_eq!(refused.len(), 3);
    for r in refused {
        assert_eq!(r.6.as_deref(), Some(key_id));
        assert!(
            r.7.is_some() && r.7.as_deref() != Some(read_endpoint.as_str()),
            "the DELETE endpoint: {r:?}"
        );
    }
    let unknown: Vec<&Row> = rows.iter().filter(|r| r.2 == "invalid_key").collect();
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        (&unknown[0].5, &unknown[0].6, &unknown[0].7, &unknown[0].8),
        (&None, &None, &None, &None)
    );
    // A restarted writer finds the subjects it numbered before instead of numbering them again.
    let subjects = || {
        let pool = app.state.db.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM usage_subjects")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(subjects().await, 2, "(key, GET endpoint) and (key, DELETE endpoint)");
    let listed = app
        .get(&format!("/v1/keys/{}", created["id"].as_str().unwrap()))
        .await
        .body;
    assert_eq!(
        listed["total_requests"], 10,
        "the key's own requests, allowed and denied"
    );
    assert!(listed["last_used_at"].is_string());
    // Command answers carry the same figures, each its own key's, also when answered together.
    let idle = app.create_key(json!({ "name": "idle" })).await;
    assert_eq!(idle["total_requests"], 0);
    let (used_path, idle_path) = (
        format!("/v1/keys/{}", created["id"].as_str().unwrap()),
        format!("/v1/keys/{}", idle["id"].as_str().unwrap()),
    );
    let (used, unused) = tokio::join!(
        app.patch(&used_path, json!({ "name": "renamed" })),
        app.patch(&idle_path, json!({ "name": "still idle" }))
    );
    assert_eq!(
        (&used.body["total_requests"], &used.body["last_used_at"]),
        (&json!(10), &listed["last_used_at"])
    );
    assert_eq!(
        (&unused.body["total_requests"], &unused.body["last_used_at"]),
        (&json!(0), &serde_json::Value::Null)
    );
    // Answers reuse the figures they read for a moment, but not past this node's next usage
    // write: once the key's GET shows two more requests, so does the next answer.
    for _ in 0..2 {
        assert_eq!(app.edge_get("/files/1", &key).await.status, StatusCode::OK);
    }
    eventually("the two requests were never counted", || async {
        app.get(&used_path).await.body["total_requests"] == 12
    })
    .await;
    let again = app.patch(&used_path, json!({ "name": "renamed again" })).await;
    assert_eq!(again.body["total_requests"], 12);
    assert_eq!(app.edge_get("/files/1", &key).await.status, StatusCode::OK);
    let db = app.stop().await;
    let app = keyledger_tests::start(db, Default::default()).await;
    let rows = logged(&app).await;
    assert_eq!(rows.len(), 14);
    assert_eq!(rows[13].7.as_deref(), Some(read_endpoint.as_str()));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_subjects")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 2);
    app
}

both!(a_restarted_node_serves_known_keys_without_pbkdf2, restart);
async fn restart(app: TestApp) -> TestApp {
    platform(&app).await;
    let key = key_of(&app.create_key(json!({ "name": "r", "scopes": ["FILES_READ"] })).await);
    let app = app.restart().await;
    assert!(
        app.state
            .edge
            .cache
            .key(&key[8..20])
            .and_then(|k| k.verifier.known().cloned())
            .is_some(),
        "verifier loaded with the snapshot"
    );
    assert_eq!(app.edge_get("/files/1", &key).await.status, StatusCode::OK);
    app
}

// The snapshot a starting node loads has one row per key: a rotated key's retired secret must
// still come with it, for its grace period.
both!(a_restarted_node_accepts_both_secrets_of_a_rotated_key, restart_rotated);
async fn restart_rotated(app: TestApp) -> TestApp {
    platform(&app).await;
    let created = app.create_key(json!({ "name": "r", "scopes": ["FILES_READ"] })).await;
    let (id, old) = (created["id"].as_str().unwrap().to_owned(), key_of(&created));
    let new = rotate_with_an_hours_grace(&app, &id).await;
    let app = app.restart().await;
    both_secrets_then_only_the_new(&app, &old, &new).await;
    app
}

/// Rotates key `id` with a one-hour grace for its old secret; returns the new key.
async fn rotate_with_an_hours_grace(app: &TestApp, id: &str) -> String {
    key_of(
        &app.post(&format!("/v1/keys/{id}/rotate"), json!({ "grace_seconds": 3600 }))
            .await
            .body,
    )
}

/// Within the grace both secrets pass the edge; two hours on, only the new one.
async fn both_secrets_then_only_the_new(app: &TestApp, old: &str, new: &str) {
    assert_eq!(
        app.edge_get("/files/1", old).await.status,
        StatusCode::OK,
        "old secret within grace"
    );
    assert_eq!(app.edge_get("/files/1", new).await.status, StatusCode::OK);
    app.clock.advance(chrono::Duration::hours(2));
    let late = app.edge_get("/files/1", old).await;
    assert_eq!((late.status, code(&late)), (StatusCode::UNAUTHORIZED, "key_expired"));
    assert_eq!(app.edge_get("/files/1", new).await.status, StatusCode::OK);
}

/// With no trusted proxy configured, X-Forwarded-For is the client's word and is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let db = keyledger_tests::fresh_database(keyledger_tests::Backend::Sqlite)
        .await
        .unwrap();
    let app = keyledger_tests::start_with(db, Default::default(), |c| c.serve.trusted_proxies.clear()).await;
    platform(&app).await;
    let key = key_of(
        &app.create_key(json!({ "name": "office", "scopes": ["FILES_READ"], "ip_allow": ["10.0.0.0/8"] }))
            .await,
    );
    let spoofed = app
        .edge_request(Method::GET, "/files/1", Some(&key), &[("x-forwarded-for", "10.0.0.1")])
        .await;
    assert_eq!(
        (spoofed.status, code(&spoofed)),
        (StatusCode::FORBIDDEN, "ip_forbidden")
    );
    app.finish().await;
}

both!(
    pbkdf2_runs_only_on_a_verifier_miss_and_is_budgeted_per_address,
    pbkdf2_budget
);
async fn pbkdf2_budget(app: TestApp) -> TestApp {
    platform(&app).await;
    let key = key_of(&app.create_key(json!({ "name": "k", "scopes": ["FILES_READ"] })).await);
    // Lose every verifier (as after a pepper change) and restart: the edge must fall back to PBKDF2.
    sqlx::query("DELETE FROM key_verifiers")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let app = app.restart().await;
    let verifier_known = |app: &TestApp| {
        app.state
            .edge
            .cache
            .key(&key[8..20])
            .unwrap()
            .verifier
            .known()
            .is_some()
    };
    assert!(!verifier_known(&app));
    assert_eq!(
        app.edge_get("/files/1", &key).await.status,
        StatusCode::OK,
        "PBKDF2 once"
    );
    assert!(verifier_known(&app), "then the verifier is remembered");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_verifiers")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(stored, 1, "and stored for other restarts");

    // Guessing at a key with no verifier costs PBKDF2: an address gets 30 tries a minute.
    let victim = app
        .create_key(json!({ "name": "victim", "scopes": ["FILES_READ"] }))
        .await;
    let lookup = key_of(&victim)[8..20].to_owned();
    sqlx::query("DELETE FROM key_verifiers WHERE lookup_id = $1")
        .bind(&lookup)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let app = app.restart().await;
    let guess = |n: usize| {
        keyledger_domain::key_format::PlaintextKey::compose(
            keyledger_domain::key_format::Environment::Live,
            keyledger_domain::key_format::LookupId::try_from(lookup.clone()).unwrap(),
            &format!("{n:024}"),
        )
        .unwrap()
    };
    let mut codes = Vec::new();
    for n in 0..31 {
        let g = guess(n);
        let answer = app
            .edge_request(
                Method::GET,
                "/files/1",
                Some(g.expose()),
                &[("x-forwarded-for", "203.0.113.9")],
            )
            .await;
        codes.push(answer.error_code().to_owned());
    }
    assert!(codes[..30].iter().all(|c| c == "invalid_key"), "{codes:?}");
    assert_eq!(codes[30], "rate_limited");
    // Another address, and keys with known verifiers, are unaffected.
    let other = app
        .edge_request(
            Method::GET,
            "/files/1",
            Some(guess(99).expose()),
            &[("x-forwarded-for", "203.0.113.10")],
        )
        .await;
    assert_eq!(other.error_code(), "invalid_key");
    assert_eq!(
        app.edge_request(
            Method::GET,
            "/files/1",
            Some(&key),
            &[("x-forwarded-for", "203.0.113.9")]
        )
        .await
        .status,
        StatusCode::OK
    );
    app
}

both!(
    a_damaged_stored_verifier_costs_one_pbkdf2_check_and_is_replaced,
    damaged_verifier
);
async fn damaged_verifier(app: TestApp) -> TestApp {
    platform(&app).await;
    let key = key_of(&app.create_key(json!({ "name": "k", "scopes": ["FILES_READ"] })).await);
    let lookup = &key[8..20];
    sqlx::query("UPDATE key_verifiers SET verifier = 'not a verifier' WHERE lookup_id = $1")
        .bind(lookup)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let app = app.restart().await;
    assert!(
        app.state.edge.cache.key(lookup).unwrap().verifier.known().is_none(),
        "a damaged verifier is not trusted"
    );
    assert_eq!(
        app.edge_get("/files/1", &key).await.status,
        StatusCode::OK,
        "the key still works, through PBKDF2"
    );
    let stored: String = sqlx::query_scalar("SELECT verifier FROM key_verifiers WHERE lookup_id = $1")
        .bind(lookup)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(
        stored.len() == 64 && stored.bytes().all(|b| b.is_ascii_hexdigit()),
        "replaced by a good verifier: {stored:?}"
    );
    // The next node to start trusts it again.
    let app = app.restart().await;
    assert!(app.state.edge.cache.key(lookup).unwrap().verifier.known().is_some());
    assert_eq!(app.edge_get("/files/1", &key).await.status, StatusCode::OK);
    app
}

both!(
    usage_the_database_refuses_is_kept_in_the_spool_and_stored_once_it_takes_it,
    unwritable_usage
);
/// `keyledger_usage_write_failures_total`, process-wide (tests share the metrics recorder).
async fn write_failures(app: &TestApp) -> u64 {
    app.counter("keyledger_usage_write_failures_total").await
}

/// The usage log's records of `path`, with their key.
async fn logged(app: &TestApp, path: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT path, key_id FROM usage_log WHERE path = $1")
        .bind(path)
        .fetch_all(app.state.db.pool())
        .await
        .unwrap()
}

/// Renames `table` away, has `act` make a request, waits until the writer has failed to store
/// it, renames the table back and returns the request's records once stored.
async fn refused_then_taken(app: &TestApp, table: &str, path: &str, key: &str) -> Vec<(String, Option<String>)> {
    let before = write_failures(app).await;
    sqlx::query(&format!("ALTER TABLE {table} RENAME TO {table}_gone"))
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let status = app.edge_get(path, key).await.status;
    assert!(
        status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
        "{status}"
    );
    eventually("the writer never tried to store the record", || async {
        write_failures(app).await > before
    })
    .await;
    assert!(logged(app, path).await.is_empty());
    sqlx::query(&format!("ALTER TABLE {table}_gone RENAME TO {table}"))
        .execute(app.state.db.pool())
        .await
        .unwrap();
    eventually("the spooled record was not stored once the table was back", || async {
        !logged(app, path).await.is_empty()
    })
    .await;
    // Another flush or two, to see it is not stored again.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    logged(app, path).await
}

async fn unwritable_usage(app: TestApp) -> TestApp {
    let records = refused_then_taken(&app, "usage_batches", "/files/refused", "ak_live_garbage").await;
    assert_eq!(records, [("/files/refused".to_owned(), None)], "stored once");
    app
}

both!(
    usage_whose_subjects_cannot_be_numbered_yet_is_kept_and_stored_once_they_can,
    unnumbered_usage
);
async fn unnumbered_usage(app: TestApp) -> TestApp {
    platform(&app).await;
    let issued = app.create_key(json!({ "name": "k", "scopes": ["FILES_READ"] })).await;
    let key = key_of(&issued);
    // The log itself can be written; what its records are about cannot be numbered.
    let records = refused_then_taken(&app, "usage_subjects", "/files/7", &key).await;
    let key_id = issued["id"].as_str().map(str::to_owned);
    assert_eq!(records, [("/files/7".to_owned(), key_id)], "stored once, with its key");
    app
}
