//! What the read models' queries share: a SQL builder that numbers placeholders, pages and
//! cursors, and reading stored times and JSON.

use crate::ProjectionError;
use chrono::{DateTime, TimeZone, Utc};
use keyledger_commands::{Database, StoreError};
use sqlx::any::AnyRow;

pub const MAX_PAGE: i64 = 200;

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A SQL text with `$n` placeholders built alongside its arguments, because the Any driver's
/// query builder does not number placeholders for PostgreSQL.
#[derive(Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Int(i64),
    Text(String),
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }
    pub(crate) fn bind_int(&mut self, v: i64) -> &mut Self {
        self.args.push(Arg::Int(v));
        self.text.push_str(&format!("${}", self.args.len()));
        self
    }
    pub(crate) fn bind_text(&mut self, v: impl Into<String>) -> &mut Self {
        self.args.push(Arg::Text(v.into()));
        self.text.push_str(&format!("${}", self.args.len()));
        self
    }
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
    /// The same arguments under another text (one that wraps this one's).
    pub(crate) fn with_text(mut self, text: String) -> Self {
        self.text = text;
        self
    }
    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_str()),
            };
        }
        q
    }

    pub(crate) async fn fetch_all(&self, db: &Database) -> Result<Vec<AnyRow>, ProjectionError> {
        Ok(self.query().fetch_all(db.pool()).await?)
    }

    /// The rows one at a time, as the database sends them: for answers too long to hold.
    pub(crate) fn fetch<'a>(&'a self, db: &'a Database) -> futures::stream::BoxStream<'a, Result<AnyRow, sqlx::Error>> {
        self.query().fetch(db.pool())
    }
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn opt_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(time)
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> Result<T, ProjectionError> {
    serde_json::from_str(raw).map_err(|e| ProjectionError::Store(StoreError::Corrupt(format!("{what}: {e}"))))
}

/// A cursor is the position of the last row returned; anything else is a client error.
pub fn parse_cursor(cursor: &str) -> Option<i64> {
    cursor.parse::<i64>().ok().filter(|c| *c > 0)
}

/// A page of a list query's live rows (`select` ends in its WHERE clause, and its rows have a
/// `position`), newest first, of `tenant` (every tenant's when `None`).
pub(crate) async fn tenant_page<T>(
    db: &Database,
    select: &str,
    tenant: Option<&str>,
    limit: i64,
    cursor: Option<i64>,
    row: impl Fn(&AnyRow) -> Result<(i64, T), ProjectionError>,
) -> Result<Page<T>, ProjectionError> {
    let mut sql = Sql::new(select);
    if let Some(tenant) = tenant {
        sql.push(" AND tenant = ").bind_text(tenant);
    }
    if let Some(cursor) = cursor {
        sql.push(" AND position < ").bind_int(cursor);
    }
    sql.push(" ORDER BY position DESC LIMIT ").bind_int(limit + 1);
    let rows = sql.fetch_all(db).await?;
    let rows = rows.iter().map(row).collect::<Result<Vec<_>, _>>()?;
    Ok(page(rows, limit))
}

/// The row of a query (`select` ends in its WHERE clause) whose `column` is `id`.
pub(crate) async fn one<T>(
    db: &Database,
    select: &str,
    column: &str,
    id: &str,
    row: impl Fn(&AnyRow) -> Result<(i64, T), ProjectionError>,
) -> Result<Option<T>, ProjectionError> {
    let mut sql = Sql::new(select);
    sql.push(&format!(" AND {column} = ")).bind_text(id);
    let rows = sql.fetch_all(db).await?;
    rows.first().map(row).transpose().map(|r| r.map(|(_, t)| t))
}

pub(crate) fn page<T>(mut rows: Vec<(i64, T)>, limit: i64) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|(p, _)| p.to_string())
    } else {
        None
    };
    Page {
        data: rows.into_iter().map(|(_, t)| t).collect(),
        next_cursor,
    }
}
