//! A backlog of keys written straight into the event log, cloned from one key the API issued:
//! two events per key (issued, then its per-minute limit changed to `100 + i % 50`). Shared as
//! source by the end-to-end tests and the crash tests of `api/` (which need the `keyledger`
//! binary, so they live in that crate).

use serde_json::{json, Value};

/// One event row: aggregate id, sequence, event type, payload.
pub type Row = (String, i64, &'static str, String);

/// Keys per INSERT: 10 parameters per key, far below SQLite's limit.
pub const KEYS_PER_INSERT: usize = 200;

/// The key id of the `i`th cloned key.
pub fn key_id(base: u128, i: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(base + i as u128)
}

/// The events of keys `keys`, cloned from `issued` (a `KeyIssued` payload).
pub fn rows(issued: &Value, base: u128, keys: &[usize]) -> Vec<Row> {
    let mut rows = Vec::with_capacity(keys.len() * 2);
    for &i in keys {
        let key_id = key_id(base, i).to_string();
        let mut event = issued.clone();
        event["KeyIssued"]["key_id"] = json!(key_id);
        event["KeyIssued"]["lookup_id"] = json!(format!("bl{i:010}"));
        let mut limits = issued["KeyIssued"]["rate_limits"].clone();
        limits["per_minute"] = json!(100 + i % 50);
        let changed = json!({ "KeyRateLimitsChanged": { "rate_limits": limits, "at": issued["KeyIssued"]["at"] } });
        rows.push((key_id.clone(), 1, "KeyIssued", event.to_string()));
        rows.push((key_id, 2, "KeyRateLimitsChanged", changed.to_string()));
    }
    rows
}

/// `INSERT INTO events … VALUES` for `count` rows, binding id, sequence, type, payload and
/// metadata in that order; PostgreSQL's JSON columns need a cast (`postgres`).
pub fn insert_sql(count: usize, postgres: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ",
    );
    for i in 0..count {
        let n = i * 5;
        let json = |p: usize| {
            if postgres {
                format!("CAST(${p} AS json)")
            } else {
                format!("${p}")
            }
        };
        sql.push_str(if i == 0 { "" } else { ", " });
        sql.push_str(&format!(
            "('ApiKey', ${}, ${}, ${}, '1.0', {}, {})",
            n + 1,
            n + 2,
            n + 3,
            json(n + 4),
            json(n + 5)
        ));
    }
    sql
}

/// Binds `rows` to a query made from [`insert_sql`], each with `metadata`.
pub fn bind<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    rows: Vec<Row>,
    metadata: &str,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for (id, sequence, event_type, payload) in rows {
        query = query
            .bind(id)
            .bind(sequence)
            .bind(event_type.to_owned())
            .bind(payload)
            .bind(metadata.to_owned());
    }
    query
}
