//! Connecting to the configured backend and applying its migrations.
//!
//! The event store needs the typed pool its crate wants (sqlite-es or postgres-es); read models,
//! the global log and checkpoints use one `AnyPool` so one SQL text serves both backends.

use crate::store::EventRepo;
use crate::StoreError;
use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyPool, PgPool, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connected database: its event store and its shared pool for read models.
#[derive(Clone)]
pub struct Database {
    backend: Backend,
    any: AnyPool,
    /// Connections for read models' transactions, which may skip the commit's flush to disk.
    derived: AnyPool,
    events: EventRepo,
    typed: TypedPool,
    /// SQLite has one writer at a time. Writers of one process queue here, in order, instead of
    /// in SQLite's busy handler, which sleeps 1 to 100 ms between retries: under 8 concurrent
    /// commands those sleeps, not the disk, set the pace (p99 190 ms).
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// Held while a write transaction runs (SQLite); nothing on PostgreSQL.
pub struct WriteTurn(#[allow(dead_code)] Option<tokio::sync::OwnedMutexGuard<()>>);

#[derive(Clone)]
enum TypedPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Redacts the password of a database URL for logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((creds, host)) => {
                let user = creds.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Bytes of the database file SQLite reads through a memory map rather than `pread` (every
/// pool): its page copies were the dispatcher's largest kernel cost (README: The webhook
/// benchmark). The trade: an I/O error on a mapped page is a SIGBUS, not an error.
const MMAP_SIZE: &str = "268435456";

/// An Any pool on the SQLite file at `url` (already in WAL mode), committing with `synchronous`.
async fn sqlite_any_pool(url: &str, connections: u32, synchronous: &'static str) -> Result<AnyPool, StoreError> {
    Ok(AnyPoolOptions::new()
        .max_connections(connections)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                sqlx::query(&format!("PRAGMA synchronous = {synchronous}"))
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *conn).await?;
                sqlx::query(&format!("PRAGMA mmap_size = {MMAP_SIZE}"))
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

impl Database {
    /// Connects to `sqlite://path` (file and folder created if missing) or `postgres://…`.
    // No `err` here: the caller reports a failed start once, with this message.
    #[tracing::instrument(skip_all, fields(url = %redact_url(url)))]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid SQLite URL: {e}")))?
                .create_if_missing(true)
                // WAL lets readers (the API) run while a writer commits. FULL syncs the WAL on
                // every commit: an acknowledged command survives a power cut, not only a crash
                // of the process. Admin commands are few, so the fsync is affordable.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                // Statement journals (a multi-row INSERT inside a transaction keeps one) in memory:
                // on disk they were a third of the usage writer's time, in write(2).
                .pragma("temp_store", "memory")
                .pragma("mmap_size", MMAP_SIZE)
                .foreign_keys(true);
            if let Some(parent) = Path::new(options.get_filename()).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", parent.display())))?;
                }
            }
            let typed = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options.clone())
                .await?;
            // The file now exists in WAL mode; the Any pool opens it with the same settings.
            let any_url = format!("sqlite://{}", options.get_filename().display());
            let any = sqlite_any_pool(&any_url, 8, "FULL").await?;
            // Read models are derived from the log and commit with their checkpoint: a commit
            // lost to a power cut rolls both back, and the worker applies those events again.
            // So their commits need not sync the WAL (synchronous=NORMAL keeps the database
            // consistent); the next command's FULL commit syncs the WAL file, frames before it
            // included. Under load that halves the fsyncs in SQLite's one writer queue.
            // Three: the projection runner, the webhook queue and the usage rollups.
            let derived = sqlite_any_pool(&any_url, 3, "NORMAL").await?;
            Ok(Database {
                backend: Backend::Sqlite,
                any,
                derived,
                events: EventRepo::sqlite(typed.clone()),
                typed: TypedPool::Sqlite(typed),
                writer: Some(Arc::new(tokio::sync::Mutex::new(()))),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // One direct attempt first: a pool that cannot connect only says "timed out", while
            // the user needs the reason (refused, unknown host, wrong password, no database).
            use sqlx::Connection as _;
            let probe = tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(url)).await;
            match probe {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                }
                Ok(Err(e)) => {
                    return Err(StoreError::Unavailable(format!(
                        "cannot reach the database at {}: {e}",
                        redact_url(url)
                    )))
                }
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "cannot reach the database at {}: no answer within 10 s",
                        redact_url(url)
                    )))
                }
            }
            let typed = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            let any = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // Compiling a plan (JIT) costs tens of milliseconds, and pays only for
                        // queries longer than any of ours: an analytics report spent 42 of its
                        // 81 ms compiling.
                        sqlx::query("SET jit = off").execute(&mut *conn).await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await?;
            Ok(Database {
                backend: Backend::Postgres,
                // PostgreSQL skips the flush per transaction instead (the projection runner's claim).
                derived: any.clone(),
                any,
                events: EventRepo::postgres(typed.clone()),
                typed: TypedPool::Postgres(typed),
                writer: None,
            })
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL {}: use sqlite://PATH or postgres://…",
                redact_url(url)
            )))
        }
    }

    /// Applies the backend's embedded migrations.
    #[tracing::instrument(skip_all, err)]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.typed {
            TypedPool::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
            TypedPool::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for this process's turn to write (SQLite); hold it for the whole write transaction.
    pub async fn write_turn(&self) -> WriteTurn {
        match &self.writer {
            Some(writer) => WriteTurn(Some(writer.clone().lock_owned().await)),
            None => WriteTurn(None),
        }
    }

    /// The pool for read models, checkpoints and the global log.
    pub fn pool(&self) -> &AnyPool {
        &self.any
    }

    /// The pool for read models' write transactions (SQLite: commits that skip the WAL sync, see `connect`).
    pub fn derived_pool(&self) -> &AnyPool {
        &self.derived
    }

    pub fn events(&self) -> &EventRepo {
        &self.events
    }

    /// The PostgreSQL pool, for `LISTEN`.
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.typed {
            TypedPool::Postgres(pool) => Some(pool),
            TypedPool::Sqlite(_) => None,
        }
    }

    pub async fn close(&self) {
        self.any.close().await;
        self.derived.close().await;
        match &self.typed {
            TypedPool::Sqlite(p) => p.close().await,
            TypedPool::Postgres(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact_url("postgres://kl:hunter2@db:5432/kl"),
            "postgres://kl:***@db:5432/kl"
        );
        assert_eq!(redact_url("sqlite://./data/k.db"), "sqlite://./data/k.db");
    }
}
