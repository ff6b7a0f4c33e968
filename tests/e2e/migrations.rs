//! Migrations that rewrite stored data, run over data in the earlier form.

use keyledger_tests::{fresh_database, Backend};

/// Applies the backend's migration files numbered `from..=to` as plain SQL.
async fn apply(pool: &sqlx::AnyPool, backend: Backend, from: u32, to: u32) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(match backend {
        Backend::Sqlite => "../migrations/sqlite",
        Backend::Postgres => "../migrations/postgres",
    });
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let number: u32 = p.file_name().unwrap().to_str().unwrap()[..4].parse().unwrap();
            (from..=to).contains(&number)
        })
        .collect();
    files.sort();
    assert_eq!(files.len() as u32, to - from + 1, "{files:?}");
    for file in files {
        sqlx::raw_sql(&std::fs::read_to_string(&file).unwrap())
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

/// A fresh database of `backend` (when reachable) with the migrations up to `to` applied.
async fn migrated_to(backend: Backend, to: u32) -> Option<(keyledger_tests::TestDb, sqlx::AnyPool)> {
    let db = fresh_database(backend).await?;
    sqlx::any::install_default_drivers();
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url),
        Backend::Postgres => db.url.clone(),
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    apply(&pool, backend, 1, to).await;
    Some((db, pool))
}

type LogRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    String,
    i64,
    Option<String>,
);

async fn usage_subjects_keep_the_log_as_it_was(backend: Backend) {
    let Some((db, pool)) = migrated_to(backend, 5).await else {
        return;
    };
    // Two batches in the form of migration 0005: every record spells its ids out.
    for rows in [
        r#"[[1000,"acme","k1","e1","files","GET","/a",200,"VALID",5,"127.0.0.1"],
            [1001,null,null,null,null,"GET","/b",401,"invalid_key",3,"::1"],
            [1002,"acme","k1",null,null,"POST","/c\"",404,"endpoint_not_found",4,null]]"#,
        r#"[[2000,"acme","k1","e1","files","GET","/a",200,"VALID",6,"10.0.0.1"],
            [2001,"beta","k2","e1","files","GET","/a",429,"rate_limited",7,"10.0.0.2"]]"#,
    ] {
        sqlx::query("INSERT INTO usage_batches (written_at_ms, records, rows) VALUES (0, 0, $1)")
            .bind(rows)
            .execute(&pool)
            .await
            .unwrap();
    }
    let query = "SELECT at_ms, tenant, key_id, endpoint_id, plugin, method, path, status, code, latency_us, \
                 client_ip FROM usage_log ORDER BY batch_id, seq";
    let before: Vec<LogRow> = sqlx::query_as(query).fetch_all(&pool).await.unwrap();
    assert_eq!(before.len(), 5);
    apply(&pool, backend, 6, 6).await;
    let after: Vec<LogRow> = sqlx::query_as(query).fetch_all(&pool).await.unwrap();
    assert_eq!(
        after, before,
        "the view reads the rewritten batches as it read the old ones"
    );
    let subjects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_subjects")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        subjects, 3,
        "(acme, k1, e1), (acme, k1, none), (beta, k2, e1): each once"
    );
    pool.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn usage_subjects_keep_the_log_as_it_was_sqlite() {
    usage_subjects_keep_the_log_as_it_was(Backend::Sqlite).await;
}

#[tokio::test]
async fn usage_subjects_keep_the_log_as_it_was_postgres() {
    usage_subjects_keep_the_log_as_it_was(Backend::Postgres).await;
}

/// Rollups folded before the grains are kept as detailed rows, and the next step of the rollups
/// is told to sum them into the coarser grains.
async fn rollups_keep_their_rows_as_detail(backend: Backend) {
    let Some((db, pool)) = migrated_to(backend, 12).await else {
        return;
    };
    for (period, key, requests) in [("hour", "k1", 3), ("hour", "k2", 4), ("day", "k1", 7)] {
        sqlx::query(
            "INSERT INTO usage_rollups (period, bucket_ms, tenant, key_id, endpoint_id, plugin, outcome, status, \
             requests, latency_sum_us, latency_sketch) VALUES ($1, 3600000, 'acme', $2, 'e1', 'Files', 'VALID', 200, $3, 10, 'p1:')",
        )
        .bind(period)
        .bind(key)
        .bind(requests)
        .execute(&pool)
        .await
        .unwrap();
    }
    apply(&pool, backend, 13, 13).await;
    let rows: Vec<(String, String, String, i64)> =
        sqlx::query_as("SELECT grain, period, key_id, requests FROM usage_rollups ORDER BY period, key_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let detail = |period: &str, key: &str, n: i64| ("detail".to_owned(), period.to_owned(), key.to_owned(), n);
    assert_eq!(
        rows,
        [detail("day", "k1", 7), detail("hour", "k1", 3), detail("hour", "k2", 4)]
    );
    let summed: i64 = sqlx::query_scalar("SELECT CAST(grains_summed AS BIGINT) FROM usage_rollup_checkpoint")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(summed, 0, "the coarser grains are still to be summed");
    pool.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn rollups_keep_their_rows_as_detail_sqlite() {
    rollups_keep_their_rows_as_detail(Backend::Sqlite).await;
}

#[tokio::test]
async fn rollups_keep_their_rows_as_detail_postgres() {
    rollups_keep_their_rows_as_detail(Backend::Postgres).await;
}
