use keyledger_domain::webhook::template::TemplateAggregateError;
use keyledger_domain::webhook::WebhookError;
use keyledger_domain::{AdminTokenError, ApiKeyError, EndpointError};

/// Failures of the storage layer itself: nothing a caller did wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("event store: {0}")]
    EventStore(String),
    /// The database did not answer (unreachable at start, connection refused or lost, no
    /// connection free in time): the same request may succeed later. Text where one failure
    /// answers many waiters, or where the cause needs spelling out (the address tried).
    #[error("{0}")]
    Unavailable(String),
}

impl StoreError {
    /// The database did not answer, rather than refused: a retry later may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => unavailable(e),
            _ => false,
        }
    }

    /// One failure told to each of several waiters (`sqlx::Error` is not `Clone`), keeping
    /// whether the database was unavailable.
    pub fn shared(e: &sqlx::Error) -> StoreError {
        if unavailable(e) {
            StoreError::Unavailable(format!("the database is unavailable: {e}"))
        } else {
            StoreError::EventStore(e.to_string())
        }
    }
}

/// cqrs-es's repositories box the `sqlx::Error` they met: unboxed, it keeps its kind.
impl From<cqrs_es::persist::PersistenceError> for StoreError {
    fn from(e: cqrs_es::persist::PersistenceError) -> Self {
        use cqrs_es::persist::PersistenceError::*;
        match e {
            ConnectionError(inner) | UnknownError(inner) => match inner.downcast::<sqlx::Error>() {
                Ok(sqlx) => StoreError::Database(*sqlx),
                Err(other) => StoreError::EventStore(other.to_string()),
            },
            DeserializationError(inner) => StoreError::Corrupt(inner.to_string()),
            OptimisticLockError => StoreError::EventStore("a concurrent append won".to_owned()),
        }
    }
}

/// Whether `e` says the database could not be reached or is going away (SQLSTATE class 08,
/// shutdown, too many connections) rather than that it refused the statement. A protocol error
/// is what answers at the database's address not speaking PostgreSQL (a connection cut
/// mid-message, another service on a port freed by an outage): the database is not there.
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
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
    Template(TemplateAggregateError),
    #[error(transparent)]
    Webhook(WebhookError),
    #[error(transparent)]
    Alert(keyledger_domain::webhook::alert::AlertAggregateError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        CommandError::Store(StoreError::Database(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_cannot_be_reached_or_does_not_speak_the_protocol_is_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for e in [
            sqlx::Error::Io(refused),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Protocol("unexpected response from SSLRequest: 0x48".into()),
        ] {
            let shown = e.to_string();
            assert!(StoreError::Database(e).is_unavailable(), "{shown}");
        }
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
    }
}
