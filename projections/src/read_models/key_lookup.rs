//! `key_lookup`: the edge's hot lookup, one row per presentable secret (a rotated key has two
//! until the old secret's grace deadline), derived from the key's folded state.

use super::{json, ms, Applied, FoldedKeys, Shared};
use crate::rows::{self, Cell};
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use keyledger_domain::api_key::IssuedKey;
use keyledger_domain::key_format::{LookupId, SecretHash};
use keyledger_domain::ApiKey;
use sqlx::AnyConnection;

const INTO: &str = "key_lookup (lookup_id, key_id, secret_hash, valid_until_ms, position, state)";

/// The secrets a key accepts: the current one, and the retired one until its deadline.
pub fn secrets(key: &IssuedKey) -> impl Iterator<Item = (&LookupId, &SecretHash, Option<DateTime<Utc>>)> {
    std::iter::once((&key.lookup_id, &key.secret_hash, None)).chain(
        key.previous_secret
            .iter()
            .map(|p| (&p.lookup_id, &p.secret_hash, Some(p.valid_until))),
    )
}

// A row's key never changes: a lookup id is drawn for one key.
const UPSERT: &str = "ON CONFLICT (lookup_id) DO UPDATE SET secret_hash = excluded.secret_hash, \
     valid_until_ms = excluded.valid_until_ms, position = excluded.position, state = excluded.state";

pub(super) async fn apply(
    conn: &mut AnyConnection,
    events: &[Applied],
    shared: &mut Shared,
) -> Result<(), ProjectionError> {
    let Some(FoldedKeys {
        ids,
        before,
        states,
        last_at,
        ..
    }) = shared.keys(conn, "key_lookup", events).await?
    else {
        return Ok(());
    };
    // A key's rows are its secrets: a rotation drops the oldest, whose row goes; the others are
    // written over in place.
    let mut gone: Vec<String> = Vec::new();
    for (id, old) in before {
        let Some(old) = old.issued() else { continue };
        let kept: Vec<&LookupId> = match states.get(id).and_then(ApiKey::issued) {
            Some(new) => secrets(new).map(|(lookup_id, _, _)| lookup_id).collect(),
            None => Vec::new(),
        };
        gone.extend(
            secrets(old)
                .map(|(lookup_id, _, _)| lookup_id)
                .filter(|lookup_id| !kept.contains(lookup_id))
                .map(|lookup_id| lookup_id.as_str().to_owned()),
        );
    }
    if !gone.is_empty() {
        rows::delete_where_in(conn, "key_lookup", "lookup_id", &gone).await?;
    }
    let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(ids.len());
    for (id, state) in states.iter() {
        let Some(key) = state.issued() else { continue };
        let position = last_at.get(id).copied().unwrap_or(0);
        let state = json(state);
        for (lookup_id, hash, valid_until) in secrets(key) {
            rows.push(vec![
                lookup_id.as_str().into(),
                id.as_str().into(),
                hash.as_phc().into(),
                valid_until.map(ms).into(),
                position.into(),
                state.clone().into(),
            ]);
        }
    }
    rows::insert(conn, INTO, UPSERT, rows).await
}
