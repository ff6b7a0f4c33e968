//! Set-based writes: a batch's rows go to the database in a few multi-row statements, not a
//! statement per event. One SQL text serves SQLite and PostgreSQL through the Any driver.

use crate::ProjectionError;
use sqlx::AnyConnection;

/// One column value of a row to write.
#[derive(Debug, Clone)]
pub(crate) enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(Some(v))
    }
}

impl From<Option<i64>> for Cell {
    fn from(v: Option<i64>) -> Self {
        Cell::Int(v)
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(Some(v))
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(Some(v.to_owned()))
    }
}

impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Self {
        Cell::Text(v)
    }
}

/// Bind parameters per statement: under SQLite's limit (32 766) and PostgreSQL's (65 535), and
/// small enough that a statement's text stays cheap to parse.
const MAX_PARAMS: usize = 8_000;

/// Writes the `n`th placeholder. SQLite gets anonymous `?`: sqlx binds numbered ones by asking
/// SQLite each parameter's name, a linear search, so a statement of thousands of `$n` spent 85 %
/// of a rebuild in `sqlite3_bind_parameter_name`.
fn placeholder(sql: &mut String, sqlite: bool, n: usize) {
    if sqlite {
        sql.push('?');
    } else {
        sql.push('$');
        sql.push_str(itoa::Buffer::new().format(n));
    }
}

fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

/// Appends `(…), (…)`: `rows` tuples of `width` placeholders numbered on from `$1`, those at
/// `bigints` (1-based within a tuple) cast, since PostgreSQL types a VALUES list's parameters as
/// text.
fn push_tuples(sql: &mut String, sqlite: bool, rows: usize, width: usize, bigints: &[usize]) {
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=width {
            n += 1;
            if c > 1 {
                sql.push_str(", ");
            }
            if bigints.contains(&c) {
                sql.push_str("CAST(");
                placeholder(sql, sqlite, n);
                sql.push_str(" AS BIGINT)");
            } else {
                placeholder(sql, sqlite, n);
            }
        }
        sql.push(')');
    }
}

/// [`push_tuples`] for a statement of the caller's own (a `VALUES` list or an `IN` list of
/// tuples), whose every argument is bound in order.
pub(crate) fn tuples(conn: &AnyConnection, rows: usize, width: usize, bigints: &[usize]) -> String {
    let mut sql = String::with_capacity(rows * width * 5);
    push_tuples(&mut sql, is_sqlite(conn), rows, width, bigints);
    sql
}

/// `count` placeholders from `$1`, joined by `, `: an `IN (…)` list of integers, which
/// [`where_in`]'s JSON list of texts cannot compare on PostgreSQL.
pub(crate) fn list(conn: &AnyConnection, count: usize) -> String {
    let sqlite = is_sqlite(conn);
    let mut sql = String::with_capacity(count * 4);
    for n in 1..=count {
        if n > 1 {
            sql.push_str(", ");
        }
        placeholder(&mut sql, sqlite, n);
    }
    sql
}

/// `INSERT INTO <into> VALUES (…), (…) <tail>` for every row, as few statements as fit.
/// `into` names the table and its columns; `tail` is an `ON CONFLICT` clause or empty. Every
/// row must have as many cells as `into` has columns.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    into: &str,
    tail: &str,
    rows: Vec<Vec<Cell>>,
) -> Result<(), ProjectionError> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let per_statement = (MAX_PARAMS / width.max(1)).max(1);
    let sqlite = is_sqlite(conn);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Cell>> = rows.by_ref().take(per_statement).collect();
        let mut sql = String::with_capacity(32 + chunk.len() * width * 5);
        sql.push_str("INSERT INTO ");
        sql.push_str(into);
        sql.push_str(" VALUES ");
        push_tuples(&mut sql, sqlite, chunk.len(), width, &[]);
        sql.push(' ');
        sql.push_str(tail);
        // A full chunk's text is the same every time: prepared once per connection, the database
        // parses and plans its thousands of parameters once, not per batch (a quarter of
        // PostgreSQL's time for these statements). A shorter chunk's text varies with its rows.
        let mut query = sqlx::query(&sql).persistent(chunk.len() == per_statement);
        for row in chunk {
            debug_assert_eq!(row.len(), width);
            for cell in row {
                query = match cell {
                    Cell::Int(v) => query.bind(v),
                    Cell::Text(v) => query.bind(v),
                };
            }
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `<column> IN (…)` over a JSON array of ids in one parameter: a list of a thousand
/// parameters cost PostgreSQL more to plan than to run.
fn in_ids(column: &str, sqlite: bool) -> String {
    if sqlite {
        format!("{column} IN (SELECT value FROM json_each(?))")
    } else {
        format!("{column} IN (SELECT json_array_elements_text(CAST($1 AS json)))")
    }
}

/// Ids per statement.
const IDS_PER_STATEMENT: usize = 5_000;

fn json_list(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

/// Runs `DELETE FROM <table> WHERE <column> IN (…)` over every id.
pub(crate) async fn delete_where_in(
    conn: &mut AnyConnection,
    table: &str,
    column: &str,
    ids: &[String],
) -> Result<(), ProjectionError> {
    let sql = format!("DELETE FROM {table} WHERE {}", in_ids(column, is_sqlite(conn)));
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        sqlx::query(&sql).bind(json_list(chunk)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The rows of `select` (a query without a WHERE clause) whose `column` is among `ids`.
pub(crate) async fn where_in(
    conn: &mut AnyConnection,
    select: &str,
    column: &str,
    ids: &[String],
) -> Result<Vec<sqlx::any::AnyRow>, ProjectionError> {
    let sql = format!("{select} WHERE {}", in_ids(column, is_sqlite(conn)));
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        rows.extend(sqlx::query(&sql).bind(json_list(chunk)).fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// `(id, state)` of the rows whose `id_column` is among `ids` (a stored state JSON per row).
pub(crate) async fn states(
    conn: &mut AnyConnection,
    table: &str,
    id_column: &str,
    ids: &[String],
) -> Result<Vec<(String, String)>, ProjectionError> {
    use sqlx::Row;
    let mut out = Vec::with_capacity(ids.len());
    let sql = format!(
        "SELECT {id_column} AS id, state FROM {table} WHERE {}",
        in_ids(id_column, is_sqlite(conn))
    );
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        for row in sqlx::query(&sql).bind(json_list(chunk)).fetch_all(&mut *conn).await? {
            out.push((row.try_get("id")?, row.try_get("state")?));
        }
    }
    Ok(out)
}
