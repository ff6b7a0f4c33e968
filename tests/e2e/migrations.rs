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
    let Some(db) = fresh_database(backend).await else {
        return;
    };
    sqlx::any::install_default_drivers();
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url),
        Backend::Postgres => db.url.clone(),
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    apply(&pool, backend, 1, 5).await;
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
