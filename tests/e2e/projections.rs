use keyledger_commands::CommandContext;
use keyledger_domain::webhook::alert::{AlertCommand, WindowFigures};
use keyledger_projections::{rebuild, ReadModel};
use keyledger_tests::backlog;
use keyledger_tests::{both, TestApp};
use serde_json::json;
use sqlx::{Column, Row};

/// Every row of a table, as strings, in a stable order.
async fn dump(app: &TestApp, table: &str) -> Vec<Vec<String>> {
    let rows = sqlx::query(&format!("SELECT * FROM {table}"))
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..r.columns().len())
                .map(|i| {
                    r.try_get::<Option<String>, _>(i)
                        .map(|v| v.unwrap_or_else(|| "NULL".into()))
                        .or_else(|_| {
                            r.try_get::<Option<i64>, _>(i)
                                .map(|v| v.map_or("NULL".into(), |n| n.to_string()))
                        })
                        .or_else(|_| {
                            r.try_get::<Option<f64>, _>(i)
                                .map(|v| v.map_or("NULL".into(), |n| n.to_string()))
                        })
                        .unwrap_or_else(|e| panic!("{table}.{}: {e}", r.column(i).name()))
                })
                .collect()
        })
        .collect();
    out.sort();
    out
}

both!(a_rebuilt_read_model_equals_the_live_one, rebuild_equals_live);
async fn rebuild_equals_live(app: TestApp) -> TestApp {
    let a = app
        .create_key(json!({ "name": "a", "scopes": ["FILES_READ"], "ip_allow": ["10.0.0.0/8"] }))
        .await;
    let b = app.create_key(json!({ "name": "b", "environment": "test" })).await;
    app.patch(
        &format!("/v1/keys/{}", a["id"].as_str().unwrap()),
        json!({ "name": "a2", "rate_limits": { "per_second": 3 } }),
    )
    .await;
    app.post(
        &format!("/v1/keys/{}/rotate", a["id"].as_str().unwrap()),
        json!({ "grace_seconds": 60 }),
    )
    .await;
    app.post(&format!("/v1/keys/{}/revoke", b["id"].as_str().unwrap()), json!({}))
        .await;
    let (token_id, _) = app
        .create_token(
            &app.token,
            json!({ "name": "t", "permissions": ["API_MANAGEMENT_READ"] }),
        )
        .await;
    assert_eq!(
        app.delete_as(&app.token, &format!("/v1/admin-tokens/{token_id}"))
            .await
            .status,
        reqwest::StatusCode::NO_CONTENT
    );

    app.import_demo().await;
    let endpoint = app.get("/v1/endpoints?q=download").await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(&format!("/v1/endpoints/{endpoint}/disable?tenant=acme"), json!({}))
        .await;
    app.post(
        &format!("/v1/endpoints/{endpoint}/deprecate"),
        json!({ "sunset": "2099-01-01T00:00:00Z" }),
    )
    .await;

    let template = app
        .post(
            "/v1/webhook-templates",
            json!({ "name": "ops", "kind": "custom", "body": "{{ title }}" }),
        )
        .await;
    let template = template.body["id"].as_str().unwrap().to_owned();
    app.patch(
        &format!("/v1/webhook-templates/{template}"),
        json!({ "body": "{{ summary }}" }),
    )
    .await;
    let gone = app
        .post("/v1/webhook-templates", json!({ "name": "gone", "kind": "slack" }))
        .await;
    app.delete_as(
        &app.token,
        &format!("/v1/webhook-templates/{}", gone.body["id"].as_str().unwrap()),
    )
    .await;
    let hook = app
        .post(
            "/v1/webhooks",
            json!({ "url": "https://hooks.example.com/a", "event_types": ["*"], "template_id": template }),
        )
        .await;
    let hook = format!("/v1/webhooks/{}", hook.body["id"].as_str().unwrap());
    app.patch(&hook, json!({ "template_id": null, "headers": { "x-a": "1" } }))
        .await;
    app.post(&format!("{hook}/pause"), json!({})).await;
    app.post(&format!("{hook}/rotate-secret"), json!({})).await;
    // Alert rules: one fired, cleared and fired again; one deleted.
    let alert = app
        .post(
            "/v1/alert-rules",
            json!({ "name": "busy", "metric": "requests", "threshold": 1 }),
        )
        .await;
    let alert: uuid::Uuid = alert.body["id"].as_str().unwrap().parse().unwrap();
    for requests in [5, 0, 7] {
        let figures = WindowFigures {
            requests,
            ..WindowFigures::default()
        };
        app.state
            .bus
            .alert_command(&CommandContext::system(), alert, &"default".parse().unwrap(), |at| {
                AlertCommand::Judge { figures, at }
            })
            .await
            .unwrap();
    }
    let gone = app
        .post(
            "/v1/alert-rules",
            json!({ "name": "gone", "metric": "requests", "threshold": 1 }),
        )
        .await;
    app.delete_as(
        &app.token,
        &format!("/v1/alert-rules/{}", gone.body["id"].as_str().unwrap()),
    )
    .await;

    for model in ReadModel::ALL {
        let before: Vec<_> = futures::future::join_all(model.tables().iter().map(|t| dump(&app, t))).await;
        assert!(before.iter().any(|rows| !rows.is_empty()), "{} has data", model.name());
        let mut calls = 0;
        let at = rebuild(&app.state.db, &[model], |_, _| calls += 1).await.unwrap();
        assert!(calls >= 2, "progress reported");
        assert_eq!(at, app.event_count().await);
        let after: Vec<_> = futures::future::join_all(model.tables().iter().map(|t| dump(&app, t))).await;
        assert_eq!(before, after, "rebuilt {} equals the live one", model.name());
    }
    app
}

/// Keys written straight into the log, two events each, cloned from the one the API created: a
/// backlog of more than one batch.
const BACKLOG_KEYS: usize = 7_000;
const BACKLOG_BASE: u128 = 0xba0c_1090_0000_0000;

async fn write_backlog(app: &TestApp) -> i64 {
    let pool = app.state.db.pool();
    let (payload, metadata): (String, String) = sqlx::query_as(
        "SELECT CAST(payload AS TEXT), CAST(metadata AS TEXT) FROM events WHERE event_type = 'KeyIssued'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let template: serde_json::Value = serde_json::from_str(&payload).unwrap();
    let postgres = app.state.db.backend() == keyledger_commands::Backend::Postgres;
    let keys: Vec<usize> = (0..BACKLOG_KEYS).collect();
    for chunk in keys.chunks(backlog::KEYS_PER_INSERT) {
        let rows = backlog::rows(&template, BACKLOG_BASE, chunk);
        let sql = backlog::insert_sql(rows.len(), postgres);
        let query = backlog::bind(sqlx::query(&sql), rows, &metadata);
        query.execute(pool).await.unwrap();
    }
    app.event_count().await
}

both!(a_backlog_projected_and_rebuilt_in_large_batches_equals_itself, backlog);
/// A backlog is projected in growing batches (on PostgreSQL, one transaction per read model,
/// with the next batch read ahead): live and rebuilt, the read models come out the same.
async fn backlog(app: TestApp) -> TestApp {
    app.create_key(json!({ "name": "template", "scopes": ["FILES_READ"], "ip_allow": ["10.0.0.0/8"] }))
        .await;
    let head = write_backlog(&app).await;
    app.state
        .catchup
        .wait_for(head, std::time::Duration::from_secs(120))
        .await
        .expect("the live runner takes in the backlog");
    let tables: Vec<&str> = ReadModel::ALL.iter().flat_map(|m| m.tables()).copied().collect();
    let live: Vec<_> = futures::future::join_all(tables.iter().map(|t| dump(&app, t))).await;
    let rows = |table: &str| live[tables.iter().position(|t| *t == table).unwrap()].len();
    assert_eq!(rows("api_keys"), BACKLOG_KEYS + 1);
    assert_eq!(rows("key_lookup"), BACKLOG_KEYS + 1);
    assert_eq!(rows("audit_log") as i64, head, "one audit entry per event");
    let last = BACKLOG_KEYS - 1;
    let key = backlog::key_id(BACKLOG_BASE, last);
    let shown = app.get(&format!("/v1/keys/{key}")).await;
    assert_eq!(
        shown.body["rate_limits"]["per_minute"],
        json!(100 + last % 50),
        "{:?}",
        shown.body
    );
    let mut batches = Vec::new();
    let at = rebuild(&app.state.db, &ReadModel::ALL, |position, _| batches.push(position))
        .await
        .unwrap();
    assert_eq!(at, head);
    // The app's own runner may take over part of the rebuild (as a serving node would): what
    // counts is that the rebuild went in batches and the models end up equal.
    assert!(
        batches.len() >= 2 && batches[1] < head,
        "the backlog took several batches: {batches:?}"
    );
    let rebuilt: Vec<_> = futures::future::join_all(tables.iter().map(|t| dump(&app, t))).await;
    let differ: Vec<String> = tables
        .iter()
        .zip(live.iter().zip(&rebuilt))
        .filter(|(_, (l, r))| l != r)
        .map(|(t, (l, r))| {
            let first = l.iter().zip(r.iter()).find(|(a, b)| a != b);
            format!(
                "{t}: {} rows live, {} rebuilt; first difference {first:?}",
                l.len(),
                r.len()
            )
        })
        .collect();
    assert!(
        live == rebuilt,
        "the rebuilt read models equal the live ones: {differ:?}"
    );
    app
}

both!(the_key_lookup_holds_what_the_edge_needs_for_every_secret, key_lookup);
async fn key_lookup(app: TestApp) -> TestApp {
    let key = app
        .create_key(json!({ "name": "edge", "scopes": ["FILES_READ"], "ip_allow": ["10.0.0.0/8"] }))
        .await;
    let id = key["id"].as_str().unwrap().to_owned();
    let old_lookup = key["prefix"].as_str().unwrap()["ak_live_".len()..].to_owned();
    // Read as any read of a read model is: once it includes every answered command.
    let rows = |app: &TestApp| {
        let (state, id) = (app.state.clone(), id.clone());
        async move {
            state.fresh().await.unwrap();
            let pool = state.db.pool();
            let rows = sqlx::query(
                "SELECT lookup_id, state, secret_hash, valid_until_ms FROM key_lookup WHERE key_id = $1 ORDER BY lookup_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
            .unwrap();
            rows.iter()
                .map(|r| {
                    // Each secret's row carries the key's state, as the edge loads it.
                    let state: keyledger_domain::ApiKey = serde_json::from_str(&r.get::<String, _>("state")).unwrap();
                    let key = state.issued().expect("an issued key's row").clone();
                    (
                        r.get::<String, _>("lookup_id"),
                        key.recorded_status.as_str().to_owned(),
                        serde_json::to_string(&key.scopes).unwrap(),
                        serde_json::to_string(&key.ip_rules.allow()).unwrap(),
                        r.get::<String, _>("secret_hash").starts_with("$pbkdf2-sha256$"),
                        r.get::<Option<i64>, _>("valid_until_ms"),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let initial = rows(&app).await;
    assert_eq!(initial.len(), 1);
    assert_eq!(initial[0].0, old_lookup);
    assert_eq!(
        (initial[0].1.as_str(), initial[0].2.as_str(), initial[0].3.as_str()),
        ("active", "[\"FILES_READ\"]", "[\"10.0.0.0/8\"]")
    );
    assert!(initial[0].4, "salted PBKDF2 hash stored");

    // Rotation: the new secret plus the old one until its grace deadline; edits reach both.
    let rotated = app
        .post(&format!("/v1/keys/{id}/rotate"), json!({ "grace_seconds": 600 }))
        .await
        .body;
    let new_lookup = rotated["prefix"].as_str().unwrap()["ak_live_".len()..].to_owned();
    app.patch(&format!("/v1/keys/{id}"), json!({ "scopes": ["CHAT_READ"] }))
        .await;
    let after = rows(&app).await;
    assert_eq!(after.len(), 2);
    let old = after.iter().find(|r| r.0 == old_lookup).unwrap();
    let new = after.iter().find(|r| r.0 == new_lookup).unwrap();
    assert!(old.5.is_some() && new.5.is_none());
    assert!(old.2.contains("CHAT_READ") && new.2.contains("CHAT_READ"));

    // A second rotation retires the first secret for good; revocation covers every row.
    app.post(&format!("/v1/keys/{id}/rotate"), json!({})).await;
    let twice = rows(&app).await;
    assert_eq!(twice.len(), 2);
    assert!(!twice.iter().any(|r| r.0 == old_lookup));
    app.post(&format!("/v1/keys/{id}/revoke"), json!({})).await;
    assert!(rows(&app).await.iter().all(|r| r.1 == "revoked"));
    app
}

/// A command answers once its events are stored and this node's edge has them, without waiting
/// for the shared read models; a read waits for those instead, so it still sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_answers_before_the_read_models_and_the_next_read_still_sees_it() {
    use keyledger_commands::clock::OffsetClock;
    use keyledger_tests::{fresh_database, start, Backend};
    let Some(db) = fresh_database(Backend::Postgres).await else {
        return;
    };
    let app = start(db, OffsetClock::default()).await;
    let created = app.create_key(json!({ "name": "held" })).await;
    let path = format!("/v1/keys/{}", created["id"].as_str().unwrap());
    let service = app.token_for("default", "service", &["API_MANAGEMENT_READ"]).await;

    // Every read model's checkpoint held, as by another node in the middle of a long batch.
    let mut hold = app.state.db.pool().begin().await.unwrap();
    sqlx::query("SELECT name FROM projection_checkpoints FOR UPDATE")
        .fetch_all(&mut *hold)
        .await
        .unwrap();

    let changed = app.patch(&path, json!({ "rate_limits": { "per_minute": 7 } })).await;
    assert_eq!(changed.status, reqwest::StatusCode::OK, "{:?}", changed.body);
    assert_eq!(changed.body["rate_limits"]["per_minute"], json!(7));
    let verdict = app.verify(&service, json!({ "key": created["key"] })).await.body;
    assert_eq!(
        verdict["ratelimit"]["limit"],
        json!(7),
        "the edge has the change at once: {verdict}"
    );

    let shown = {
        let mut read = std::pin::pin!(app.get(&path));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(300), &mut read)
                .await
                .is_err(),
            "a read waits while the read models lack an answered command"
        );
        hold.rollback().await.unwrap();
        read.await
    };
    assert_eq!(shown.body["rate_limits"]["per_minute"], json!(7), "{:?}", shown.body);
    app.finish().await;
}
