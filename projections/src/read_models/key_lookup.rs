//! `key_lookup`: the edge's hot lookup, one row per presentable secret (a rotated key has two
//! until the old secret's grace deadline), derived from the key's folded state.

use super::{json, ms, Applied, FoldedKeys};
use crate::rows::{self, Cell};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_domain::api_key::IssuedKey;
use keyledger_domain::key_format::{LookupId, SecretHash};
use sqlx::AnyConnection;

const INTO: &str = "key_lookup (lookup_id, key_id, tenant, environment, secret_hash, valid_until_ms, status, scopes, \
     rate_limits, ip_allow, ip_block, expires_at_ms, position, state)";

/// The secrets a key accepts: the current one, and the retired one until its deadline.
pub fn secrets(key: &IssuedKey) -> impl Iterator<Item = (&LookupId, &SecretHash, Option<DateTime<Utc>>)> {
    std::iter::once((&key.lookup_id, &key.secret_hash, None)).chain(
        key.previous_secret
            .iter()
            .map(|p| (&p.lookup_id, &p.secret_hash, Some(p.valid_until))),
    )
}

pub(super) async fn apply(conn: &mut AnyConnection, events: &[Applied]) -> Result<(), ProjectionError> {
    let Some(FoldedKeys {
        ids, states, last_at, ..
    }) = FoldedKeys::fold(conn, "key_lookup", events).await?
    else {
        return Ok(());
    };
    // A key's rows are replaced as a whole: a rotation drops the oldest secret.
    rows::delete_where_in(conn, "key_lookup", "key_id", &ids).await?;
    let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(ids.len());
    for (id, state) in states.into_iter() {
        let Some(key) = state.issued() else { continue };
        let position = last_at.get(&id).copied().unwrap_or(0);
        let state = json(&state);
        for (lookup_id, hash, valid_until) in secrets(key) {
            rows.push(vec![
                lookup_id.as_str().into(),
                id.as_str().into(),
                key.tenant.as_str().into(),
                key.environment.as_str().into(),
                hash.as_phc().into(),
                valid_until.map(ms).into(),
                key.recorded_status.as_str().into(),
                json(&key.scopes).into(),
                json(&key.rate_limits).into(),
                json(&key.ip_rules.allow()).into(),
                json(&key.ip_rules.block()).into(),
                key.expires_at.map(ms).into(),
                position.into(),
                state.clone().into(),
            ]);
        }
    }
    rows::insert(conn, INTO, "", rows).await
}
