use keyledger_commands::clock::OffsetClock;
use keyledger_tests::{eventually, fresh_database, start, Backend};
use reqwest::StatusCode;
use serde_json::json;

/// Two Keyledger nodes on one PostgreSQL: what one writes, the other serves, and when the node
/// running the projections stops, the other takes them over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sharing_postgres_serve_one_consistent_state() {
    let Some(db) = fresh_database(Backend::Postgres).await else {
        return;
    };
    let a = start(db.clone(), OffsetClock::default()).await;
    let b = start(db.clone(), OffsetClock::default()).await;

    // Written on A, read on B at once (a read waits until the shared read models include every
    // command answered before it, on any node).
    let key = a.create_key(json!({ "name": "shared" })).await;
    let id = key["id"].as_str().unwrap().to_owned();
    let on_b = b.get(&format!("/v1/keys/{id}")).await;
    assert_eq!(on_b.status, StatusCode::OK);
    let (token_id, token) = b
        .create_token(
            &b.token,
            json!({ "name": "made on b", "permissions": ["API_MANAGEMENT_READ"] }),
        )
        .await;
    assert_eq!(
        a.get_as(&token, "/v1/keys").await.status,
        StatusCode::OK,
        "a token made on B works on A"
    );
    // Each node authenticates from its own copy of the tokens: a deletion on A is refused by A
    // at once, and reaches B's copy through the log.
    let deleted = a.delete_as(&a.token, &format!("/v1/admin-tokens/{token_id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(a.get_as(&token, "/v1/keys").await.status, StatusCode::UNAUTHORIZED);
    eventually("a token deleted on A is refused by B", || async {
        b.get_as(&token, "/v1/keys").await.status == StatusCode::UNAUTHORIZED
    })
    .await;

    // Concurrent edits across nodes still never lose an update.
    let path = format!("/v1/keys/{id}");
    let (ra, rb) = tokio::join!(
        a.patch(&path, json!({ "name": "from a" })),
        b.patch(&path, json!({ "name": "from b" }))
    );
    let statuses = [ra.status, rb.status];
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT));

    // Each node keeps the aggregates it loaded; what the other appended since is read, not
    // missed: alternating edits all succeed and all stay.
    for (node, body) in [
        (&a, json!({ "name": "third" })),
        (&b, json!({ "scopes": ["FILES_READ"] })),
        (&a, json!({ "rate_limits": { "per_minute": 7 } })),
    ] {
        let changed = node.patch(&path, body).await;
        assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    }
    let merged = b.get(&path).await.body;
    assert_eq!(
        (&merged["name"], &merged["scopes"], &merged["rate_limits"]["per_minute"]),
        (&json!("third"), &json!(["FILES_READ"]), &json!(7))
    );

    // A decides on its own copy of a key without reading the stream; what B did since is not
    // lost. A no-op on A's stale copy (the name it last saw) is checked and redone:
    let other = a.create_key(json!({ "name": "as a saw it" })).await;
    let other = format!("/v1/keys/{}", other["id"].as_str().unwrap());
    assert_eq!(
        a.patch(&other, json!({ "scopes": ["FILES_READ"] })).await.status,
        StatusCode::OK
    );
    assert_eq!(
        b.patch(&other, json!({ "name": "renamed on b" })).await.status,
        StatusCode::OK
    );
    let back = a.patch(&other, json!({ "name": "as a saw it" })).await;
    assert_eq!(back.body["name"], "as a saw it", "{:?}", back.body);
    assert_eq!(b.get(&other).await.body["name"], "as a saw it");
    // and a change of a key B has revoked since is refused.
    assert_eq!(
        b.post(&format!("{other}/revoke"), json!({})).await.status,
        StatusCode::OK
    );
    let late = a.patch(&other, json!({ "name": "too late" })).await;
    assert_eq!(
        (late.status, late.error_code()),
        (StatusCode::CONFLICT, "key_not_active"),
        "{:?}",
        late.body
    );

    // A key revoked through A is refused by B's edge promptly (LISTEN/NOTIFY wakes B's copy).
    app_edge_propagation(&a, &b).await;

    // A stops; B keeps serving and its projections take over.
    a.stop().await;
    let revoked = b.post(&format!("/v1/keys/{id}/revoke"), json!({})).await;
    assert_eq!(revoked.status, StatusCode::OK);
    let listed = b.get("/v1/keys?status=revoked").await;
    let revoked: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(
        revoked.contains(&id.as_str()),
        "B's read models advanced without A: {revoked:?}"
    );
    let audit = b.get("/v1/audit?action=KeyRevoked").await;
    assert_eq!(
        audit.body["data"].as_array().unwrap().len(),
        3,
        "the stale-copy check's revocation, the propagation check's and this one"
    );
    b.finish().await;
}

async fn app_edge_propagation(a: &keyledger_tests::TestApp, b: &keyledger_tests::TestApp) {
    let upstream = keyledger_tests::spawn_upstream().await;
    a.register_endpoint(json!({ "methods": ["GET"], "path": "/probe", "plugin": "P", "upstream_url": upstream }))
        .await;
    let created = a.create_key(json!({ "name": "propagating" })).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let mut waited = std::time::Duration::ZERO;
    while b.edge_get("/probe", &key).await.status != StatusCode::OK {
        assert!(
            waited < std::time::Duration::from_secs(5),
            "B's edge never learned the key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        waited += std::time::Duration::from_millis(5);
    }
    let revoked_at = std::time::Instant::now();
    a.post(
        &format!("/v1/keys/{}/revoke", created["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    loop {
        let answer = b.edge_get("/probe", &key).await;
        if answer.status == StatusCode::UNAUTHORIZED {
            assert_eq!(answer.error_code(), "key_revoked");
            break;
        }
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_secs(2),
            "revocation did not reach B within 2 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Two nodes' usage writers meet the same key and endpoint at once: `usage_subjects` numbers the
/// pair once, and both nodes' records read back as about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_number_a_shared_usage_subject_once() {
    let Some(db) = fresh_database(Backend::Postgres).await else {
        return;
    };
    let a = start(db.clone(), OffsetClock::default()).await;
    let b = start(db.clone(), OffsetClock::default()).await;
    let upstream = keyledger_tests::spawn_upstream().await;
    let endpoint = a
        .register_endpoint(
            json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "upstream_url": upstream }),
        )
        .await;
    let created = a.create_key(json!({ "name": "shared" })).await;
    let key = created["key"].as_str().unwrap().to_owned();
    // B's edge learns of the endpoint and the key from the log.
    eventually("B's edge never served the new key", || async {
        b.edge_get("/files/1", &key).await.status == StatusCode::OK
    })
    .await;
    for _ in 0..5 {
        let (ra, rb) = tokio::join!(a.edge_get("/files/1", &key), b.edge_get("/files/2", &key));
        assert_eq!((ra.status, rb.status), (StatusCode::OK, StatusCode::OK));
    }
    // Both writers flush at once on the way down.
    tokio::join!(a.stop(), b.stop());
    let c = start(db.clone(), OffsetClock::default()).await;
    let subjects: Vec<(String, String, String)> =
        sqlx::query_as("SELECT tenant, key_id, endpoint_id FROM usage_subjects WHERE key_id = $1")
            .bind(created["id"].as_str().unwrap())
            .fetch_all(c.state.db.pool())
            .await
            .unwrap();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(subjects[0].2, endpoint["id"].as_str().unwrap());
    let logged: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM usage_log WHERE key_id = $1 AND endpoint_id = $2 AND plugin = 'Files'",
    )
    .bind(created["id"].as_str().unwrap())
    .bind(endpoint["id"].as_str().unwrap())
    .fetch_one(c.state.db.pool())
    .await
    .unwrap();
    assert!(
        logged >= 11,
        "B's first answer and ten more, all about the shared subject: {logged}"
    );
    c.finish().await;
}
