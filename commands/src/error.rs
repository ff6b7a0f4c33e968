use keyledger_domain::{AdminTokenError, ApiKeyError, EndpointError};

/// Failures of the storage layer itself: nothing a caller did wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("event store: {0}")]
    EventStore(String),
}

/// Why a command did not run. "The aggregate refused" (a business rule), "someone else wrote
/// first" (conflict) and "the store failed" stay apart so the API can answer each correctly.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("missing or invalid admin token")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the resource was changed concurrently; reload and retry")]
    Conflict,
    #[error(transparent)]
    Key(ApiKeyError),
    #[error(transparent)]
    Token(AdminTokenError),
    #[error(transparent)]
    Endpoint(EndpointError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        CommandError::Store(StoreError::Database(e))
    }
}
