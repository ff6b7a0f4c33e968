//! The event store: one enum over the two backends, because cqrs-es's repository trait is not
//! object-safe (generic methods returning `impl Future`).

use cqrs_es::persist::{PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::{PgPool, SqlitePool};
use std::sync::Arc;

#[derive(Clone)]
pub enum EventRepo {
    Sqlite(Arc<SqliteEventRepository>),
    Postgres(Arc<PostgresEventRepository>),
}

impl EventRepo {
    pub fn sqlite(pool: SqlitePool) -> Self {
        EventRepo::Sqlite(Arc::new(SqliteEventRepository::new(pool)))
    }

    pub fn postgres(pool: PgPool) -> Self {
        EventRepo::Postgres(Arc::new(PostgresEventRepository::new(pool)))
    }
}

impl PersistedEventRepository for EventRepo {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            EventRepo::Sqlite(r) => r.get_events::<A>(aggregate_id).await,
            EventRepo::Postgres(r) => r.get_events::<A>(aggregate_id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            EventRepo::Sqlite(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            EventRepo::Postgres(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            EventRepo::Sqlite(r) => r.get_snapshot::<A>(aggregate_id).await,
            EventRepo::Postgres(r) => r.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match self {
            EventRepo::Sqlite(r) => r.persist::<A>(events, snapshot_update).await,
            EventRepo::Postgres(r) => r.persist::<A>(events, snapshot_update).await,
        }
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        match self {
            EventRepo::Sqlite(r) => r.stream_events::<A>(aggregate_id).await,
            EventRepo::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            EventRepo::Sqlite(r) => r.stream_all_events::<A>().await,
            EventRepo::Postgres(r) => r.stream_all_events::<A>().await,
        }
    }
}
