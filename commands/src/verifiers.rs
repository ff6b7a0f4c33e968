//! `key_verifiers`: the edge's peppered verifiers, HMAC(pepper, key), one per secret and pepper
//! (DESIGN §7). The only module that speaks to the table.
//!
//! One rule for every writer: a new verifier replaces what is stored. The same pepper and key
//! always give the same verifier, so this only ever changes a damaged row.

use crate::secrets::VerifierDigest;
use crate::{Backend, Database, StoreError};
use futures::TryStreamExt;
use sqlx::Row;

pub async fn store(
    db: &Database,
    lookup_id: &str,
    pepper_id: &str,
    verifier: &VerifierDigest,
) -> Result<(), StoreError> {
    let _turn = db.write_turn().await;
    sqlx::query(
        "INSERT INTO key_verifiers (lookup_id, pepper_id, verifier) VALUES ($1, $2, $3) \
         ON CONFLICT (lookup_id, pepper_id) DO UPDATE SET verifier = excluded.verifier",
    )
    .bind(lookup_id)
    .bind(pepper_id)
    .bind(verifier.to_hex())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The stored text for one secret, as stored (it may be damaged: the caller decides).
pub async fn find(db: &Database, lookup_id: &str, pepper_id: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT verifier FROM key_verifiers WHERE lookup_id = $1 AND pepper_id = $2")
            .bind(lookup_id)
            .bind(pepper_id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Verifiers per row that [`for_each`] reads on SQLite.
const CHUNK: i64 = 1_000;

/// On SQLite each row would cross from the connection's thread to the reading task alone, a
/// wake-up each, which on one core cost more than reading it: rows come [`CHUNK`] to a row, in
/// the table's order, each as lookup id, unit separator, verifier, joined by record separators
/// (neither is in a lookup id; a damaged verifier holding one is read as damaged).
const SQLITE_CHUNK: &str = "SELECT COUNT(*) AS n, MAX(r) AS last, \
     group_concat(lookup_id || char(31) || verifier, char(30)) AS pairs FROM \
     (SELECT rowid AS r, lookup_id, verifier FROM key_verifiers WHERE pepper_id = $1 AND rowid > $2 \
     ORDER BY rowid LIMIT $3)";

/// Every verifier stored for one pepper, handed to `each` as (lookup id, stored text) without
/// collecting them (an edge's start-up snapshot: a million keys' verifiers are never held
/// twice). Returns how many there were.
pub async fn for_each(db: &Database, pepper_id: &str, mut each: impl FnMut(&str, &str)) -> Result<usize, StoreError> {
    let mut n = 0;
    if db.backend() == Backend::Postgres {
        let mut rows = sqlx::query("SELECT lookup_id, verifier FROM key_verifiers WHERE pepper_id = $1")
            .bind(pepper_id)
            .fetch(db.pool());
        while let Some(row) = rows.try_next().await? {
            each(row.try_get("lookup_id")?, row.try_get("verifier")?);
            n += 1;
        }
        return Ok(n);
    }
    let mut after = 0i64;
    loop {
        let chunk = sqlx::query(SQLITE_CHUNK)
            .bind(pepper_id)
            .bind(after)
            .bind(CHUNK)
            .fetch_one(db.pool())
            .await?;
        if chunk.try_get::<i64, _>("n")? == 0 {
            return Ok(n);
        }
        after = chunk.try_get("last")?;
        for pair in chunk.try_get::<&str, _>("pairs")?.split('\x1e') {
            let (lookup_id, verifier) = pair.split_once('\x1f').unwrap_or((pair, ""));
            each(lookup_id, verifier);
            n += 1;
        }
    }
}
