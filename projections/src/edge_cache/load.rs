//! A node's start: the snapshot of the shared read models its edge starts from (rows and their
//! checkpoints, read in one consistent transaction), and this node's verifiers.
//!
//! With a million keys this is what stands between a restart and serving (README: "A million
//! keys"): rows are streamed, never collected, and each key's settings are parsed once per
//! distinct text rather than once per key.

use super::entries::{EndpointEntry, LookupKey, Verifier};
use super::keys::Keys;
use super::{build_routes, corrupt, stored, tokens, Endpoints, Snapshot};
use crate::read_models::admin_tokens;
use crate::{ProjectionError, ReadModel};
use futures::TryStreamExt;
use keyledger_commands::{verifiers, Backend, Database};
use keyledger_domain::endpoint::RegisteredEndpoint;
use sqlx::Row;
use std::sync::Arc;
use std::time::Instant;

pub(super) struct Loaded {
    pub(super) snapshot: Snapshot,
    pub(super) keys: Keys,
    pub(super) endpoints: Endpoints,
    pub(super) tokens: tokens::Tokens,
}

pub(super) async fn snapshot(db: &Database, pepper_id: &str) -> Result<Loaded, ProjectionError> {
    let began = Instant::now();
    let mut tx = db.pool().begin().await?;
    if db.backend() == Backend::Postgres {
        // Rows and checkpoints must come from one snapshot.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
    }
    let snapshot = Snapshot {
        keys: checkpoint(&mut tx, ReadModel::KeyLookup).await?,
        endpoints: checkpoint(&mut tx, ReadModel::Endpoints).await?,
        tokens: checkpoint(&mut tx, ReadModel::AdminTokens).await?,
    };
    let mut tokens = tokens::Tokens::default();
    for (fingerprint, entry) in admin_tokens::live_tokens(&mut tx).await? {
        tokens.insert(fingerprint, entry);
    }
    let mut endpoints = Endpoints::default();
    let endpoint_rows = sqlx::query("SELECT endpoint_id, state FROM endpoints")
        .fetch_all(&mut *tx)
        .await?;
    for r in &endpoint_rows {
        let id: String = r.try_get("endpoint_id")?;
        let state: Option<RegisteredEndpoint> = serde_json::from_str(r.try_get::<&str, _>("state")?)
            .map_err(|e| corrupt(&format!("endpoint {id} state"), e))?;
        if let Some(state) = state {
            endpoints.by_id.insert(id.clone(), Arc::new(EndpointEntry::of(&state)));
            endpoints.states.insert(id, state);
        }
    }
    endpoints.routes = Arc::new(build_routes(&endpoints.by_id));

    let mut keys = Keys::with_capacity(key_count_estimate(&mut tx, db.backend()).await?);
    let mut reader = stored::Reader::default();
    current_states(&mut tx, db.backend(), |text| reader.add(&mut keys, text)).await?;
    tx.rollback().await?;
    let read = began.elapsed();
    // Read after the rows: a key in them has its verifier stored by now, unless issuance
    // failed to store it (then PBKDF2 decides once, and stores it).
    let mut set = 0;
    let stored = verifiers::for_each(db, pepper_id, |lookup_id, text| {
        if let Some(lookup) = LookupKey::new(lookup_id) {
            set += usize::from(keys.set_verifier(&lookup, Verifier::stored(lookup_id, Some(text))));
        }
    })
    .await?;
    keys.unknown_not_stored(set);
    tracing::info!(
        keys = reader.keys(),
        secrets = keys.by_lookup.len(),
        profiles = keys.profiles.len(),
        verifiers = stored,
        rows_ms = read.as_millis() as u64,
        total_ms = began.elapsed().as_millis() as u64,
        "edge cache loaded"
    );
    Ok(Loaded {
        snapshot,
        keys,
        endpoints,
        tokens,
    })
}

/// States per chunk that [`current_states`] reads on SQLite: a few MB of text a row.
const CHUNK: i64 = 1_000;

/// A rotated key has a row per secret, each with the key's state: the current secret's row (no
/// deadline) stands for the key. On SQLite each row would cross from its connection's thread
/// to this task alone, a wake-up each: on one core that hand-off was a third of a restart's time
/// (perf, 100 000 keys), so rows come [`CHUNK`] to a row, in the table's own order, their
/// states joined by a record separator (JSON text holds no raw control character). PostgreSQL
/// streams rows over its socket without that cost.
const SQLITE_CHUNK: &str = "SELECT COUNT(*) AS n, MAX(r) AS last, group_concat(state, char(30)) AS states FROM \
     (SELECT rowid AS r, state FROM key_lookup WHERE valid_until_ms IS NULL AND rowid > $1 ORDER BY rowid LIMIT $2)";

/// Hands every current key's stored state to `each`, as text.
async fn current_states(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    mut each: impl FnMut(&str) -> Result<(), ProjectionError>,
) -> Result<(), ProjectionError> {
    if backend == Backend::Postgres {
        let mut rows = sqlx::query("SELECT state FROM key_lookup WHERE valid_until_ms IS NULL").fetch(tx);
        while let Some(r) = rows.try_next().await? {
            each(r.try_get("state")?)?;
        }
        return Ok(());
    }
    let mut after = 0i64;
    loop {
        let chunk = sqlx::query(SQLITE_CHUNK)
            .bind(after)
            .bind(CHUNK)
            .fetch_one(&mut *tx)
            .await?;
        if chunk.try_get::<i64, _>("n")? == 0 {
            return Ok(());
        }
        after = chunk.try_get("last")?;
        for state in chunk.try_get::<&str, _>("states")?.split('\x1e') {
            each(state)?;
        }
    }
}

/// About how many keys `key_lookup` holds, from what the database knows without reading the
/// table: SQLite's largest row id (rows are appended), PostgreSQL's row estimate. Capped, so
/// that a strange answer cannot make a start reserve gigabytes.
async fn key_count_estimate(tx: &mut sqlx::AnyConnection, backend: Backend) -> Result<usize, ProjectionError> {
    let sql = match backend {
        Backend::Sqlite => "SELECT CAST(COALESCE(MAX(rowid), 0) AS BIGINT) FROM key_lookup",
        Backend::Postgres => {
            "SELECT CAST(GREATEST(COALESCE(MAX(reltuples), 0), 0) AS BIGINT) FROM pg_class \
             WHERE oid = to_regclass('key_lookup')"
        }
    };
    let rows: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await?;
    Ok(usize::try_from(rows).unwrap_or(0).min(50_000_000))
}

/// A read model's checkpoint, as the snapshot's transaction sees it.
async fn checkpoint(tx: &mut sqlx::AnyConnection, model: ReadModel) -> Result<i64, ProjectionError> {
    let row = sqlx::query("SELECT position FROM projection_checkpoints WHERE name = $1")
        .bind(model.name())
        .fetch_optional(tx)
        .await?;
    Ok(match row {
        Some(r) => r.try_get("position")?,
        None => 0,
    })
}
