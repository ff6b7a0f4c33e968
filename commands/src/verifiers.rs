//! `key_verifiers`: the edge's peppered verifiers, HMAC(pepper, key), one per secret and pepper
//! (DESIGN §7). The only module that speaks to the table.
//!
//! One rule for every writer: a new verifier replaces what is stored. The same pepper and key
//! always give the same verifier, so this only ever changes a damaged row.

use crate::secrets::VerifierDigest;
use crate::{Database, StoreError};
use sqlx::Row;
use std::collections::HashMap;

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

/// Every verifier stored for one pepper, by lookup id (an edge's start-up snapshot).
pub async fn all_for(db: &Database, pepper_id: &str) -> Result<HashMap<String, String>, StoreError> {
    let rows = sqlx::query("SELECT lookup_id, verifier FROM key_verifiers WHERE pepper_id = $1")
        .bind(pepper_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("lookup_id")?, r.try_get("verifier")?)))
        .collect()
}
