use keyledger_commands::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event {position} ({event_type}) cannot be read: {reason}")]
    Undecodable {
        position: i64,
        event_type: String,
        reason: String,
    },
    #[error("unknown projection {0:?}; known: {1}")]
    Unknown(String, String),
    #[error("read models did not catch up with position {0} in time")]
    CatchupTimeout(i64),
    #[error("usage log: {0}")]
    Usage(String),
}

impl ProjectionError {
    /// The same failure told to another waiter (errors are not `Clone`): its text, and whether
    /// the database was unavailable, which the API answers with 503.
    pub fn told_again(&self) -> ProjectionError {
        match self {
            ProjectionError::Store(s) if s.is_unavailable() => {
                ProjectionError::Store(StoreError::Unavailable(self.to_string()))
            }
            other => ProjectionError::Usage(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ProjectionError {
    fn from(e: sqlx::Error) -> Self {
        ProjectionError::Store(StoreError::Database(e))
    }
}
