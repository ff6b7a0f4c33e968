//! Where the tests find PostgreSQL, and fresh databases on it. Shared as source by the end-to-end
//! tests and the crash tests of `api/` (see `backlog`).

/// Where the tests find PostgreSQL's maintenance database.
pub fn admin_url() -> String {
    std::env::var("KEYLEDGER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// CI (and anyone who sets KEYLEDGER_REQUIRE_POSTGRES=1) must not skip PostgreSQL tests.
pub fn required() -> bool {
    std::env::var("KEYLEDGER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A new, empty database: its URL and name. `None` (with a printed reason) only when PostgreSQL
/// is unreachable and not required.
pub async fn create_database() -> Option<(String, String)> {
    let admin_url = admin_url();
    let pool = match sqlx::PgPool::connect(&admin_url).await {
        Ok(p) => p,
        Err(e) if !required() => {
            eprintln!("skipping PostgreSQL test: cannot reach {admin_url}: {e} (set KEYLEDGER_TEST_POSTGRES_URL)");
            return None;
        }
        Err(e) => panic!("PostgreSQL is required (CI) but {admin_url} is unreachable: {e}"),
    };
    let name = format!("kl_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create test database");
    pool.close().await;
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("KEYLEDGER_TEST_POSTGRES_URL must end in /DATABASE"),
    };
    Some((url, name))
}

/// Drops a database made by [`create_database`], closing its sessions.
pub async fn drop_database(name: &str) {
    if let Ok(pool) = sqlx::PgPool::connect(&admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&pool)
            .await;
        pool.close().await;
    }
}
