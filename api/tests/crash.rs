//! Crash safety of the read models: a `keyledger` killed with SIGKILL while it projects, live or
//! in a rebuild, leaves read models that, once it runs again, equal a fresh rebuild of the log.
//! On SQLite and on PostgreSQL.

#[path = "../../tests/support/backlog.rs"]
mod backlog;
mod node;

use node::*;

use serde_json::{json, Value};
use sqlx::{AnyPool, Column, Row};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Keys seeded straight into the log, two events each: enough that projecting them takes a
/// while even in a debug build, so a kill lands part-way.
const SEEDED_KEYS: usize = 20_000;
const TABLES: [&str; 6] = [
    "api_keys",
    "key_lookup",
    "admin_tokens",
    "audit_log",
    "endpoints",
    "endpoint_tenant_settings",
];

/// Issues one key through the real command path, then appends `SEEDED_KEYS` more keys (an
/// issue and a rate-limit change each) straight to the log, shaped like it. Returns the log's
/// head before and after the seeding.
async fn store_with_many_events(dir: &Store) -> (i64, i64) {
    let mut child = spawn_serve(dir, &[]);
    let addr = listening(&mut child).0;
    let created = reqwest::Client::new()
        .post(format!("http://{addr}/v1/keys"))
        .bearer_auth(TOKEN)
        .json(&json!({ "name": "template", "scopes": ["FILES_READ"], "ip_allow": ["10.0.0.0/8"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    stop(child, "-TERM");

    let db = pool(dir).await;
    let (payload, metadata): (String, String) = sqlx::query_as(
        "SELECT CAST(payload AS TEXT), CAST(metadata AS TEXT) FROM events WHERE event_type = 'KeyIssued'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let template: Value = serde_json::from_str(&payload).unwrap();
    let before = lowest_checkpoint(&db).await;
    let mut tx = db.begin().await.unwrap();
    let keys: Vec<usize> = (0..SEEDED_KEYS).collect();
    for chunk in keys.chunks(backlog::KEYS_PER_INSERT) {
        let rows = backlog::rows(&template, 0x00c0_ffee_0000_0000, chunk);
        let sql = backlog::insert_sql(rows.len(), dir.postgres.is_some());
        let query = backlog::bind(sqlx::query(&sql), rows, &metadata);
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let head: i64 = sqlx::query_scalar("SELECT CAST(MAX(global_position) AS BIGINT) FROM events")
        .fetch_one(&db)
        .await
        .unwrap();
    db.close().await;
    (before, head)
}

/// The lowest checkpoint of the shared read models.
async fn lowest_checkpoint(db: &AnyPool) -> i64 {
    sqlx::query_scalar("SELECT CAST(COALESCE(MIN(position), 0) AS BIGINT) FROM projection_checkpoints")
        .fetch_one(db)
        .await
        .unwrap_or(0)
}

/// SIGKILLs `child` once the read models are part-way through the log (past `after`, short of
/// `head`), and says where they were.
async fn kill_part_way(dir: &Store, mut child: Child, after: i64, head: i64) -> i64 {
    let db = pool(dir).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while Instant::now() < deadline {
        seen = lowest_checkpoint(&db).await;
        if seen > after || child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.kill();
    child.wait().unwrap();
    let at_kill = lowest_checkpoint(&db).await;
    db.close().await;
    assert!(
        seen > after && at_kill < head,
        "the kill must land part-way: checkpoint {at_kill} of {head}"
    );
    at_kill
}

/// The read models' query-only indexes: a bulk load from position 0 builds them at the end.
const QUERY_INDEXES: [&str; 5] = [
    "api_keys_status_expiry",
    "api_keys_tenant_position",
    "audit_log_action",
    "audit_log_actor",
    "audit_log_tenant_position",
];

/// Which of `QUERY_INDEXES` exist, and which wait in `deferred_indexes`.
async fn query_indexes(dir: &Store) -> (Vec<String>, Vec<String>) {
    let db = pool(dir).await;
    let catalogue = if dir.postgres.is_some() {
        "SELECT CAST(indexname AS TEXT) FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
    };
    let existing: Vec<String> = sqlx::query_scalar(catalogue).fetch_all(&db).await.unwrap();
    let existing = existing
        .into_iter()
        .filter(|name| QUERY_INDEXES.contains(&name.as_str()))
        .collect();
    let deferred = sqlx::query_scalar("SELECT name FROM deferred_indexes ORDER BY name")
        .fetch_all(&db)
        .await
        .unwrap();
    db.close().await;
    (existing, deferred)
}

/// Every row of the read models, as text, sorted.
async fn read_models(dir: &Store) -> Vec<Vec<Vec<String>>> {
    let db = pool(dir).await;
    let mut all = Vec::new();
    for table in TABLES {
        if dir.postgres.is_some() {
            // The Any driver reads few of PostgreSQL's types; the row as text is exact.
            let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT CAST(t AS TEXT) FROM {table} t"))
                .fetch_all(&db)
                .await
                .unwrap();
            let mut text: Vec<Vec<String>> = rows.into_iter().map(|(row,)| vec![row]).collect();
            text.sort();
            all.push(text);
            continue;
        }
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&db)
            .await
            .unwrap();
        let mut text: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .map(|v| v.unwrap_or_else(|| "NULL".into()))
                            .or_else(|_| r.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                            .unwrap_or_else(|e| panic!("{table}.{}: {e}", r.column(i).name()))
                    })
                    .collect()
            })
            .collect();
        text.sort();
        all.push(text);
    }
    db.close().await;
    all
}

/// Starts the server again, lets it finish projecting, stops it, and checks the read models
/// against a fresh rebuild of the whole log.
async fn recovered_equals_fresh_rebuild(dir: &Store, head: i64) {
    let mut child = spawn_serve(dir, &[]);
    listening(&mut child);
    stop(child, "-TERM");
    let db = pool(dir).await;
    assert_eq!(lowest_checkpoint(&db).await, head, "caught up after the restart");
    db.close().await;
    assert_eq!(
        query_indexes(dir).await,
        (QUERY_INDEXES.map(String::from).to_vec(), vec![]),
        "every query index built, none left deferred"
    );
    let recovered = read_models(dir).await;
    assert_eq!(recovered[0].len(), SEEDED_KEYS + 1, "every key listed once");

    let out = keyledger(dir).args(["projections", "rebuild"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        recovered,
        read_models(dir).await,
        "recovered read models equal a fresh rebuild"
    );
    assert_eq!(
        query_indexes(dir).await.1,
        Vec::<String>::new(),
        "the rebuild built its indexes"
    );
}

async fn server_killed_while_projecting(dir: Store) {
    let (before, head) = store_with_many_events(&dir).await;
    // The server projects the seeded events at start, before it listens.
    let child = spawn_serve(&dir, &[]);
    kill_part_way(&dir, child, before, head).await;
    recovered_equals_fresh_rebuild(&dir, head).await;
    dir.drop().await;
}

#[tokio::test]
async fn a_server_killed_while_projecting_recovers_read_models_equal_to_a_rebuild() {
    server_killed_while_projecting(Store::sqlite()).await;
}

#[tokio::test]
async fn on_postgres_a_server_killed_while_projecting_recovers_read_models_equal_to_a_rebuild() {
    if let Some(store) = Store::postgres().await {
        server_killed_while_projecting(store).await;
    }
}

/// Kills `keyledger projections rebuild <names>` once it is part-way through the log, and checks
/// the read models once a server has finished the job.
async fn rebuild_killed_part_way(dir: Store, names: &[&str]) {
    let (_, head) = store_with_many_events(&dir).await;
    // Every read model has the whole log; the rebuild sets some of them back.
    let mut child = spawn_serve(&dir, &[]);
    listening(&mut child);
    stop(child, "-TERM");
    let rebuild = keyledger(&dir)
        .args(["projections", "rebuild"])
        .args(names)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The rebuild first empties the read models and sets their checkpoints to 0.
    let db = pool(&dir).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lowest_checkpoint(&db).await != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    db.close().await;
    kill_part_way(&dir, rebuild, 0, head).await;
    // Loading from position 0, the models set back drop their query indexes until the head.
    let (existing, deferred) = query_indexes(&dir).await;
    let expected: Vec<&str> = match names {
        [] => QUERY_INDEXES.to_vec(),
        _ => QUERY_INDEXES
            .into_iter()
            .filter(|i| i.starts_with("api_keys"))
            .collect(),
    };
    assert_eq!(deferred, expected, "deferred at the kill");
    assert_eq!(existing.len(), QUERY_INDEXES.len() - expected.len(), "{existing:?}");
    recovered_equals_fresh_rebuild(&dir, head).await;
    dir.drop().await;
}

#[tokio::test]
async fn a_rebuild_killed_part_way_recovers_read_models_equal_to_a_rebuild() {
    rebuild_killed_part_way(Store::sqlite(), &[]).await;
}

#[tokio::test]
async fn on_postgres_a_rebuild_killed_part_way_recovers_read_models_equal_to_a_rebuild() {
    if let Some(store) = Store::postgres().await {
        rebuild_killed_part_way(store, &[]).await;
    }
}

/// The server then finds one read model far behind the others: it must bring that one up
/// without moving the others back (which would apply their events twice).
#[tokio::test]
async fn a_rebuild_of_one_read_model_killed_part_way_recovers_read_models_equal_to_a_rebuild() {
    rebuild_killed_part_way(Store::sqlite(), &["key_list"]).await;
}

#[tokio::test]
async fn on_postgres_a_rebuild_of_one_read_model_killed_part_way_recovers_read_models_equal_to_a_rebuild() {
    if let Some(store) = Store::postgres().await {
        rebuild_killed_part_way(store, &["key_list"]).await;
    }
}
