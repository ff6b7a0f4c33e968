//! A PostgreSQL outage, as a node sees it: commands answer 503 `database_unavailable` with
//! `Retry-After` and change nothing (so does the explorer's Test by key id, which reads the key's
//! stream), the edge keeps deciding from memory and loses no usage
//! record, and everything works again once the database is back. (SQLite is embedded: it has no outage of its own.)

use keyledger_commands::clock::OffsetClock;
use keyledger_tests::outage::CuttableProxy;
use keyledger_tests::{eventually, fresh_database, spawn_upstream, start, Backend};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_database_outage_commands_answer_503_and_the_edge_still_serves() {
    let Some(db) = fresh_database(Backend::Postgres).await else {
        return;
    };
    let mut url = reqwest::Url::parse(&db.url).expect("database url");
    let target = tokio::net::lookup_host((url.host_str().expect("host"), url.port().unwrap_or(5432)))
        .await
        .expect("resolve the database host")
        .next()
        .expect("an address");
    let proxy = CuttableProxy::start(target).await;
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(proxy.addr.port())).expect("port");
    let mut via_proxy = db.clone();
    via_proxy.url = url.to_string();
    let app = start(via_proxy, OffsetClock::default()).await;

    let upstream = spawn_upstream().await;
    let endpoint = app.register_endpoint(json!({ "methods": ["GET"], "path": "/files/{id}", "plugin": "Files", "required_scopes": ["FILES_READ"], "upstream_url": format!("{upstream}/api") }))
        .await;
    let endpoint = endpoint["id"].as_str().expect("the endpoint's id").to_owned();
    let created = app
        .create_key(json!({ "name": "reader", "scopes": ["FILES_READ"] }))
        .await;
    let (key, id) = (created["key"].as_str().unwrap(), created["id"].as_str().unwrap());
    assert_eq!(app.edge_get("/files/1", key).await.status, StatusCode::OK);

    proxy.cut().await;
    let refused = app.patch(&format!("/v1/keys/{id}"), json!({ "name": "renamed" })).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.body);
    assert_eq!(refused.error_code(), "database_unavailable");
    assert_eq!(refused.headers["retry-after"], "5");
    for _ in 0..20 {
        let served = app.edge_get("/files/1", key).await;
        assert_eq!(
            served.status,
            StatusCode::OK,
            "the edge decides from memory: {:?}",
            served.body
        );
    }
    // The explorer's Test by key id reads the key's stream: it answers as commands do.
    let tested = app
        .post(
            &format!("/v1/endpoints/{endpoint}/test"),
            json!({ "path_params": { "id": "1" }, "key_id": id }),
        )
        .await;
    assert_eq!(tested.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", tested.body);
    assert_eq!(tested.error_code(), "database_unavailable");
    assert_eq!(app.get("/readyz").await.status, StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore().await;
    eventually("commands work again once the database is back", || async {
        app.patch(&format!("/v1/keys/{id}"), json!({ "name": "after" }))
            .await
            .status
            == StatusCode::OK
    })
    .await;
    assert_eq!(app.get(&format!("/v1/keys/{id}")).await.body["name"], "after");
    // Every decision is recorded: the 20 taken during the outage waited for the database.
    let pool = app.state.db.pool().clone();
    eventually(
        "the outage's usage records were stored once the database was back",
        || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM usage_log WHERE key_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .is_ok_and(|n| n == 21)
        },
    )
    .await;
    let history = app.get(&format!("/v1/keys/{id}/history")).await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(
        !history.body.to_string().contains("renamed"),
        "the refused command left no event: {}",
        history.body
    );
    app.finish().await;
    drop(proxy);
}
