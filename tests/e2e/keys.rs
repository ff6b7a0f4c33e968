use keyledger_tests::{both, TestApp};
use reqwest::StatusCode;
use serde_json::json;

both!(a_key_goes_through_its_whole_lifecycle, lifecycle);
async fn lifecycle(app: TestApp) -> TestApp {
    // Create: the plaintext comes back once, in the documented format.
    let created = app
        .create_key(json!({
            "name": "Main App",
            "environment": "live",
            "scopes": ["FILES_READ", "CHAT_WRITE"],
            "rate_limits": { "per_second": 5, "per_day": 10000, "burst": 20 },
            "ip_allow": ["10.0.0.0/8", "2001:db8::/32"],
            "ip_block": ["10.1.2.3"],
            "expires_at": "2099-01-01T00:00:00Z"
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ak_live_") && key.len() == 50, "{key}");
    assert_eq!(created["status"], "active");
    assert_eq!(
        created["rate_limits"],
        json!({"per_second": 5, "per_minute": 60, "per_hour": 3600, "per_day": 10000, "burst": 20})
    );
    assert_eq!(created["ip_block"], json!(["10.1.2.3/32"]));
    assert_eq!(created["prefix"].as_str().unwrap(), &key[..20]);

    // Read: never the secret.
    let got = app.get(&format!("/v1/keys/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.get("key").is_none());
    assert!(
        !got.body.to_string().contains(&key[20..]),
        "no part of the secret in reads"
    );
    assert_eq!(got.body["scopes"], json!(["CHAT_WRITE", "FILES_READ"]));
    let listed = app.get("/v1/keys").await;
    assert_eq!(listed.body["data"][0]["id"], id);

    // Edit.
    let edited = app
        .patch(
            &format!("/v1/keys/{id}"),
            json!({ "name": "Main App v2", "scopes": ["FILES_READ"], "ip_block": [] }),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{:?}", edited.body);
    assert_eq!(edited.body["name"], "Main App v2");
    assert_eq!(edited.body["scopes"], json!(["FILES_READ"]));
    assert_eq!(
        edited.body["ip_allow"],
        json!(["10.0.0.0/8", "2001:db8::/32"]),
        "unchanged list stays"
    );
    assert_eq!(edited.body["ip_block"], json!([]));

    // Rotate: a new secret once; the prefix follows the new lookup id.
    let rotated = app
        .post(&format!("/v1/keys/{id}/rotate"), json!({ "grace_seconds": 3600 }))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let new_key = rotated.body["key"].as_str().unwrap();
    assert_ne!(new_key, key);
    assert_eq!(rotated.body["prefix"].as_str().unwrap(), &new_key[..20]);

    // Revoke: permanent.
    let revoked = app
        .post(&format!("/v1/keys/{id}/revoke"), json!({ "reason": "leaked" }))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.body["status"], "revoked");
    let again = app.post(&format!("/v1/keys/{id}/revoke"), json!({})).await;
    assert_eq!(
        (again.status, again.error_code()),
        (StatusCode::CONFLICT, "key_already_revoked")
    );
    let edit_revoked = app.patch(&format!("/v1/keys/{id}"), json!({ "name": "nope" })).await;
    assert_eq!(
        (edit_revoked.status, edit_revoked.error_code()),
        (StatusCode::CONFLICT, "key_not_active")
    );
    let rotate_revoked = app.post(&format!("/v1/keys/{id}/rotate"), json!({})).await;
    assert_eq!(rotate_revoked.error_code(), "key_not_active");

    // History, oldest first, without secret hashes.
    let history = app.get(&format!("/v1/keys/{id}/history")).await;
    let types: Vec<&str> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "KeyIssued",
            "KeyRenamed",
            "KeyScopesChanged",
            "KeyIpRulesChanged",
            "KeyRotated",
            "KeyRevoked"
        ]
    );
    assert!(!history.body.to_string().contains("pbkdf2"));
    assert!(history
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"].as_str().unwrap().starts_with("admin_token:")));

    // As of: the state right after creation.
    let created_at = created["created_at"].as_str().unwrap();
    let then = app.get(&format!("/v1/keys/{id}?as_of={}", urlencode(created_at))).await;
    assert_eq!(then.status, StatusCode::OK, "{:?}", then.body);
    assert_eq!(then.body["name"], "Main App");
    assert_eq!(then.body["status"], "active");
    let before = app.get(&format!("/v1/keys/{id}?as_of=2000-01-01T00:00:00Z")).await;
    assert_eq!(before.status, StatusCode::NOT_FOUND);
    app
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

both!(revoked_keys_are_hidden_unless_asked_for, revoked_hidden);
async fn revoked_hidden(app: TestApp) -> TestApp {
    let a = app.create_key(json!({ "name": "a" })).await;
    let b = app.create_key(json!({ "name": "b" })).await;
    app.post(&format!("/v1/keys/{}/revoke", b["id"].as_str().unwrap()), json!({}))
        .await;
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&app.get("/v1/keys").await.body), [a["id"].as_str().unwrap()]);
    assert_eq!(ids(&app.get("/v1/keys?include_revoked=true").await.body).len(), 2);
    assert_eq!(
        ids(&app.get("/v1/keys?status=revoked").await.body),
        [b["id"].as_str().unwrap()]
    );
    let bad = app.get("/v1/keys?status=sleeping").await;
    assert_eq!(
        (bad.status, bad.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_status")
    );
    app
}

both!(key_lists_page_with_a_cursor, pagination);
async fn pagination(app: TestApp) -> TestApp {
    for i in 0..5 {
        app.create_key(json!({ "name": format!("key {i}") })).await;
    }
    let first = app.get("/v1/keys?limit=2").await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(first.body["data"][0]["name"], "key 4", "newest first");
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app.get(&format!("/v1/keys?limit=2&cursor={cursor}")).await;
    assert_eq!(second.body["data"][0]["name"], "key 2");
    let cursor = second.body["next_cursor"].as_str().unwrap();
    let last = app.get(&format!("/v1/keys?limit=2&cursor={cursor}")).await;
    assert_eq!(last.body["data"].as_array().unwrap().len(), 1);
    assert!(last.body["next_cursor"].is_null());
    let bad = app.get("/v1/keys?cursor=banana").await;
    assert_eq!(bad.error_code(), "invalid_cursor");
    let bad = app.get("/v1/keys?limit=0").await;
    assert_eq!(bad.error_code(), "invalid_limit");
    app
}

both!(bad_input_gets_a_clear_error_and_writes_nothing, bad_input);
async fn bad_input(app: TestApp) -> TestApp {
    let before = app.event_count().await;
    let cases = [
        (
            json!({ "name": "x", "scopes": ["FILES_READ", "NOT_A_SCOPE"] }),
            "invalid_scope",
        ),
        (json!({ "name": "x", "scopes": ["SUPERUSER_ACCESS"] }), "invalid_scope"),
        (json!({ "name": "x", "ip_allow": ["10.0.0.1/8"] }), "invalid_ip_rule"),
        (json!({ "name": "x", "ip_block": ["not-an-ip"] }), "invalid_ip_rule"),
        (
            json!({ "name": "x", "rate_limits": { "per_minute": 0 } }),
            "invalid_rate_limits",
        ),
        (
            json!({ "name": "x", "rate_limits": { "per_fortnight": 5 } }),
            "invalid_json",
        ),
        (json!({ "name": "   " }), "invalid_name"),
        (json!({ "name": "x", "environment": "staging" }), "invalid_json"),
        (
            json!({ "name": "x", "expires_at": "2001-01-01T00:00:00Z" }),
            "invalid_expiry",
        ),
        (json!({ "name": "x", "expires_at": "tomorrow" }), "invalid_json"),
        (json!({ "name": "x", "colour": "blue" }), "invalid_json"),
        (json!([1, 2, 3]), "invalid_json"),
    ];
    for (body, code) in cases {
        let answer = app.post("/v1/keys", body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}: {:?}", answer.body);
        assert_eq!(answer.error_code(), code, "{body}: {:?}", answer.body);
        assert!(answer.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let raw = app
        .client
        .post(app.url("/v1/keys"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let unknown = app.get("/v1/keys/not-a-uuid").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let missing = app
        .post(&format!("/v1/keys/{}/revoke", uuid::Uuid::new_v4()), json!({}))
        .await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let grace = app.create_key(json!({ "name": "g" })).await;
    let after_create = app.event_count().await;
    let too_long = app
        .post(
            &format!("/v1/keys/{}/rotate", grace["id"].as_str().unwrap()),
            json!({ "grace_seconds": 604801 }),
        )
        .await;
    assert_eq!(too_long.error_code(), "invalid_grace_period");
    // Replacing one IP list keeps the other; the merged rules are checked by the key itself.
    let too_many: Vec<String> = (0..257).map(|i| format!("10.1.{}.{}", i / 256, i % 256)).collect();
    let crowded = app
        .patch(
            &format!("/v1/keys/{}", grace["id"].as_str().unwrap()),
            json!({ "ip_block": too_many }),
        )
        .await;
    assert_eq!(
        (crowded.status, crowded.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_ip_rule"),
        "{:?}",
        crowded.body
    );
    assert_eq!(after_create, before + 1, "only the valid create wrote an event");
    assert_eq!(app.event_count().await, after_create);
    app
}

both!(an_admin_grants_only_scopes_it_holds, scope_grants);
async fn scope_grants(app: TestApp) -> TestApp {
    let (_, limited) = app
        .create_token(
            &app.token,
            json!({ "name": "files only", "permissions": ["API_MANAGEMENT_WRITE"], "scopes": ["FILES_READ"] }),
        )
        .await;
    let ok = app
        .post_as(
            &limited,
            "/v1/keys",
            json!({ "name": "reader", "scopes": ["FILES_READ"] }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let refused = app
        .post_as(
            &limited,
            "/v1/keys",
            json!({ "name": "writer", "scopes": ["FILES_WRITE"] }),
        )
        .await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::FORBIDDEN, "scope_not_grantable")
    );
    app
}

both!(
    a_retried_create_with_an_idempotency_key_never_makes_a_second_key,
    idempotent_create
);
async fn idempotent_create(app: TestApp) -> TestApp {
    let send = |idem: &'static str, token: String| {
        let (client, url) = (app.client.clone(), app.url("/v1/keys"));
        async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", idem)
                .json(&json!({ "name": "once" }))
                .send()
                .await
                .unwrap();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            (res.status(), replayed, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let before = app.event_count().await;
    let (status, replayed, first) = send("order-42", app.token.clone()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    assert!(first["key"].is_string());
    let (status, replayed, again) = send("order-42", app.token.clone()).await;
    assert_eq!((status, replayed), (StatusCode::OK, true));
    assert_eq!(again["id"], first["id"]);
    assert!(again.get("key").is_none(), "the plaintext is never shown twice");
    assert_eq!(app.event_count().await, before + 1);

    // Concurrent retries: one creates, the rest find it.
    let results = futures::future::join_all((0..8).map(|_| send("order-43", app.token.clone()))).await;
    let created = results.iter().filter(|(s, _, _)| *s == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|(s, _, b)| (*s == StatusCode::CREATED || *s == StatusCode::OK) && b["id"] == results[0].2["id"]));

    // The same idempotency key from another admin is another request.
    let other = app
        .token_for("default", "other writer", &["API_MANAGEMENT_WRITE"])
        .await;
    let (status, _, theirs) = send("order-42", other).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(theirs["id"], first["id"]);

    let (status, _, bad) = send("spaces are not allowed", app.token.clone()).await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );
    app
}
