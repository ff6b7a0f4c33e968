//! The database under test: a fresh SQLite directory or PostgreSQL database, and a pool onto it.

use super::*;

/// Where the server keeps its events; the bench makes it empty before each use.
pub(crate) enum Store {
    Sqlite {
        dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        /// The same server's `postgres` database, to drop and create ours.
        admin_url: String,
        name: String,
    },
}

impl Store {
    pub(crate) async fn fresh(database_url: Option<&str>) -> anyhow::Result<Self> {
        let store = match database_url {
            None => Store::Sqlite {
                dir: tempfile::tempdir().context("cannot create a temporary directory")?,
            },
            Some(url) => {
                let mut admin = url::Url::parse(url).with_context(|| format!("invalid --database-url {url}"))?;
                let name = admin.path().trim_start_matches('/').to_owned();
                let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !plain || ["postgres", "template0", "template1"].contains(&name.as_str()) {
                    bail!("--database-url must name a database of its own (letters, digits, _): it is dropped and recreated");
                }
                admin.set_path("/postgres");
                Store::Postgres {
                    url: url.to_owned(),
                    admin_url: admin.to_string(),
                    name,
                }
            }
        };
        store.recreate_postgres().await?;
        Ok(store)
    }

    /// An empty store in place of this one.
    pub(crate) async fn renew(&mut self) -> anyhow::Result<()> {
        if let Store::Sqlite { dir } = self {
            *dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        }
        self.recreate_postgres().await
    }

    pub(crate) async fn recreate_postgres(&self) -> anyhow::Result<()> {
        let Store::Postgres { admin_url, name, .. } = self else {
            return Ok(());
        };
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("cannot connect to {}", keyledger_commands::redact_url(admin_url)))?;
        for sql in [
            format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
            format!(r#"CREATE DATABASE "{name}""#),
        ] {
            sqlx::raw_sql(&sql)
                .execute(&mut conn)
                .await
                .with_context(|| format!("cannot run {sql}"))?;
        }
        conn.close().await.context("cannot close the admin connection")?;
        Ok(())
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Store::Sqlite { dir } => format!("sqlite://{}", sqlite_file(dir).display()),
            Store::Postgres { url, .. } => url.clone(),
        }
    }

    pub(crate) async fn describe(&self) -> String {
        match self {
            Store::Sqlite { dir } => format!("SQLite (WAL, synchronous=FULL) in {}", dir.path().display()),
            Store::Postgres { url, .. } => {
                let version = match PgPool::connect(url).await {
                    Ok(pool) => {
                        let v = sqlx::query_scalar::<_, String>("SHOW server_version")
                            .fetch_one(&pool)
                            .await
                            .unwrap_or_default();
                        pool.close().await;
                        v
                    }
                    Err(_) => String::new(),
                };
                format!("PostgreSQL {version} at {}", keyledger_commands::redact_url(url))
            }
        }
    }

    /// A pool of `connections`, with the settings the server uses on SQLite
    /// (commands/src/database.rs), so the raw baseline pays the same fsyncs.
    pub(crate) async fn connect(&self, connections: u32) -> anyhow::Result<Pool> {
        Ok(match self {
            Store::Sqlite { dir } => {
                let options = SqliteConnectOptions::new()
                    .filename(sqlite_file(dir))
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("temp_store", "memory");
                let pool = SqlitePoolOptions::new()
                    .max_connections(connections)
                    .connect_with(options)
                    .await
                    .context("cannot open the server's SQLite database")?;
                Pool::Sqlite(pool)
            }
            Store::Postgres { url, .. } => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await
                    .with_context(|| format!("cannot connect to {}", keyledger_commands::redact_url(url)))?,
            ),
        })
    }
}

pub(crate) fn sqlite_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("keyledger.db")
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The same code for both pools: sqlx's query functions are generic over the database.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

impl Pool {
    pub(crate) async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        on_pool!(self, p => sqlx::query(sql).execute(p).await.map(|_| ())).with_context(|| format!("cannot run {sql}"))
    }

    pub(crate) async fn insert_raw(&self, id: i64, payload: &str) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO bench_raw (id, payload) VALUES ($1, $2)";
        on_pool!(self, p => sqlx::query(sql).bind(id).bind(payload).execute(p).await.map(|_| ()))
    }

    /// The last global position (0 for an empty log).
    pub(crate) async fn head(&self) -> anyhow::Result<i64> {
        let sql = "SELECT CAST(COALESCE(MAX(global_position), 0) AS BIGINT) FROM events";
        on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).context("cannot read the log head")
    }

    /// Events in the log (positions may have holes on PostgreSQL).
    pub(crate) async fn count(&self) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM events";
        on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).context("cannot count the events")
    }

    /// The checkpoint of the projection furthest behind.
    pub(crate) async fn slowest_projection(&self) -> anyhow::Result<i64> {
        let sql = "SELECT CAST(COALESCE(MIN(position), 0) AS BIGINT) FROM projection_checkpoints";
        on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await)
            .context("cannot read the projection checkpoints")
    }

    /// Appends rows to the event store in one transaction, in multi-row INSERTs. The store's
    /// trigger assigns each its global position.
    pub(crate) async fn insert_events(&self, rows: &[EventRow]) -> anyhow::Result<()> {
        let postgres = matches!(self, Pool::Postgres(_));
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let sql = insert_sql(postgres, chunk.len());
                let mut query = sqlx::query(&sql);
                for row in chunk {
                    query = query
                        .bind(&row.aggregate_id)
                        .bind(row.sequence)
                        .bind(&row.event_type)
                        .bind(&row.payload)
                        .bind(&row.metadata);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .context("cannot append the seeded events")
    }

    pub(crate) async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// `INSERT INTO events … VALUES (…), (…)` for `rows` rows; PostgreSQL's payload and metadata
/// columns are `json`, which a text parameter reaches only through a cast.
pub(crate) fn insert_sql(postgres: bool, rows: usize) -> String {
    let json = if postgres { "::json" } else { "" };
    let mut sql = String::from(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ",
    );
    for row in 0..rows {
        let n = row * 5;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "('ApiKey', ${}, ${}, ${}, '1.0', ${}{json}, ${}{json})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5
        ));
    }
    sql
}
