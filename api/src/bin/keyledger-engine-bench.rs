//! The engine benchmark (README: "Benchmarks"). It measures the event-sourcing engine from the
//! outside: a real `keyledger` binary runs as a separate process and is driven only through its
//! CLI and its admin HTTP API, so that the same bench also measures an older build of the binary
//! (before/after numbers for a change of the engine).
//!
//! 1. Unloaded command latency: sequential PATCHes of one key (median, p90, p99), each followed by
//!    a GET that must already show the change (read-your-writes).
//! 2. Throughput against the database: `--clients` clients PATCHing their own key, alternated with
//!    as many tasks of this process doing one-row autocommit INSERTs into the same database: what
//!    the engine makes of what the database can commit.
//! 3. Rebuild from a large store: `--events` valid domain events written straight into the
//!    `events` table, then `keyledger projections rebuild` timed (events/s); and a server started
//!    on a second store seeded the same way, timed until its projections have caught up.

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent as _;
use keyledger_commands::secrets::{generate_admin_token, generate_key, SecretHasher};
use keyledger_domain::ip_rules::{CidrRule, IpRules};
use keyledger_domain::key_format::{Environment, LookupId, SecretHash};
use keyledger_domain::name::Name;
use keyledger_domain::rate_limits::{RateLimits, RateLimitsInput};
use keyledger_domain::scope::CATALOGUE;
use keyledger_domain::{ApiKeyEvent, Scope, TenantId};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The engine benchmark: drives a `keyledger` binary over its CLI and HTTP API (README: "Benchmarks").
#[derive(clap::Parser, Debug)]
#[command(name = "keyledger-engine-bench")]
struct Args {
    /// The server binary. Default: `keyledger` beside this executable.
    #[arg(long)]
    keyledger: Option<PathBuf>,
    /// postgres://…/DBNAME (DBNAME is dropped and recreated, so every run starts empty); default:
    /// SQLite in a fresh temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Concurrent clients (and raw-insert tasks) in the throughput runs.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds per throughput run.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Raw-insert and command runs, alternated; the report gives medians.
    #[arg(long, default_value_t = 3)]
    pairs: usize,
    /// Sequential PATCHes for the unloaded latency.
    #[arg(long, default_value_t = 300)]
    latency_rounds: usize,
    /// Events in the store for the rebuild and catch-up runs; 0 skips them.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Core for the server (and its CLI commands).
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// Core for this bench.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    /// Do not pin the bench and the server to cores.
    #[arg(long)]
    no_pin: bool,
}

/// Rows per multi-row INSERT when seeding: 5 bound values each, far below SQLite's 32 766.
const ROWS_PER_INSERT: usize = 1_000;
/// Rows per seeding transaction.
const ROWS_PER_TRANSACTION: usize = 5_000;
/// Keys being worked on at once while seeding: each key's events spread over this many others',
/// so a projection batch touches many keys as in real traffic.
const SEED_WINDOW: usize = 1_000;
/// The server waits up to 60 s for its projections before it gives up; this is for everything else.
const START_PATIENCE: Duration = Duration::from_secs(120);
/// Bounds the catch-up run: a server that gives up waiting is started again, this many times.
const MAX_RESTARTS: usize = 200;

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let pin = (!args.no_pin).then_some(Pinning {
        server: args.server_cpu,
        client: args.client_cpu,
    });
    // Pinned before the runtime exists: its threads (and sqlx's SQLite threads) inherit the
    // affinity of this, the only thread so far.
    if let Some(pin) = &pin {
        let status = Command::new("taskset")
            .args(["-cp", &pin.client.to_string(), &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .context("cannot run taskset (util-linux) to pin the bench; --no-pin runs without")?;
        if !status.success() {
            bail!("taskset could not pin the bench to core {}: {status}", pin.client);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    runtime.block_on(run(args, pin))
}

#[derive(Debug, Clone, Copy)]
struct Pinning {
    server: usize,
    client: usize,
}

async fn run(args: Args, pin: Option<Pinning>) -> anyhow::Result<()> {
    let date = Utc::now();
    let source = source_commit();
    let engine = Engine::new(server_binary(args.keyledger.as_deref())?, pin.map(|p| p.server))?;
    let mut store = Store::fresh(args.database_url.as_deref()).await?;
    let version = engine.version();
    println!("# Keyledger engine benchmark");
    println!("server binary: {} ({version})", engine.bin.display());
    let backend = store.describe().await;
    println!("backend: {backend}");
    println!(
        "bench: pid {}, cores {}",
        std::process::id(),
        affinity(std::process::id())
    );

    let (server, start_empty) = engine.serve_ready(&store.url(), START_PATIENCE).await?;
    println!(
        "server: pid {}, cores {}; ready on an empty store after {:.2} s",
        server.process.pid(),
        affinity(server.process.pid()),
        start_empty.as_secs_f64()
    );
    if pin.is_none() {
        println!("(not pinned: --no-pin)");
    }
    let api = Api::new(&server.admin, &engine.token)?;
    let latency = latency_phase(&api, args.latency_rounds).await?;
    let throughput = throughput_phase(&args, &store, &server, &engine.token).await?;
    server.stop()?;

    let rebuild = if args.events > 0 {
        Some(rebuild_phase(&args, &engine, &mut store).await?)
    } else {
        println!("\n## 3. Rebuild: skipped (--events 0)");
        None
    };

    let summary = Summary {
        date,
        backend,
        version,
        start_empty,
        latency,
        throughput,
        rebuild,
        source,
    };
    summary.print(&args, &engine, pin);
    Ok(())
}

/// `--keyledger`, or `keyledger` beside this executable (both are built into target/release).
fn server_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .context("cannot find this executable's path")?
            .with_file_name("keyledger"),
    };
    if !path.is_file() {
        bail!(
            "no server binary at {} (build it, or pass --keyledger PATH)",
            path.display()
        );
    }
    Ok(path)
}

/// The cores a process may run on, as taskset reports them.
fn affinity(pid: u32) -> String {
    Command::new("taskset")
        .args(["-cp", &pid.to_string()])
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.rsplit_once(": ").map(|(_, list)| list.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

// ---------------------------------------------------------------------------------------------
// Processes

/// One line a child printed, stamped when it was read (so timings do not depend on when the
/// bench gets around to looking).
struct Line {
    at: Instant,
    text: String,
}

/// A child process whose output is drained by two threads into a channel (a full pipe would stall
/// it). However the bench leaves the scope, the child is stopped: SIGTERM, then SIGKILL.
struct Process {
    child: Child,
    lines: mpsc::Receiver<Line>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

enum Next {
    Line(Line),
    /// Both output streams are closed: the process has ended.
    Closed,
    Timeout,
}

impl Process {
    fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("cannot start {cmd:?}"))?;
        let (tx, lines) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        pump(stdout, tx.clone(), tail.clone());
        pump(stderr, tx, tail.clone());
        Ok(Process { child, lines, tail })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line printed, polled so as not to block the runtime's only worker.
    async fn next_line(&self, deadline: Instant) -> Next {
        loop {
            match self.lines.try_recv() {
                Ok(line) => return Next::Line(line),
                Err(mpsc::TryRecvError::Disconnected) => return Next::Closed,
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if Instant::now() >= deadline {
                return Next::Timeout;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The last lines it printed, for error messages.
    fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// The exit status of a process whose output has just closed (it is exiting by itself).
    fn exit_status(&mut self) -> anyhow::Result<ExitStatus> {
        match self.wait_for_exit(Duration::from_secs(5))? {
            Some(status) => Ok(status),
            None => self.terminate(Duration::from_secs(30)),
        }
    }

    /// SIGTERM (the server drains, flushes and stops), then SIGKILL after `grace`.
    fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait().context("cannot wait for a child")? {
            return Ok(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if let Some(status) = self.wait_for_exit(grace)? {
            return Ok(status);
        }
        self.child.kill().context("cannot kill a child")?;
        self.child.wait().context("cannot wait for a killed child")
    }

    fn wait_for_exit(&mut self, within: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().context("cannot wait for a child")? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.terminate(Duration::from_secs(30));
    }
}

/// Copies a child's stream line by line into the channel and the tail, until it closes.
fn pump(stream: impl Read + Send + 'static, tx: mpsc::Sender<Line>, tail: Arc<Mutex<VecDeque<String>>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buf).trim_end().to_owned();
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == 40 {
                    tail.pop_front();
                }
                tail.push_back(text.clone());
            }
            // The receiver is gone once the bench stopped listening: keep draining regardless.
            let _ = tx.send(Line {
                at: Instant::now(),
                text,
            });
        }
    });
}

/// How to run the server binary: which file, on which core, with which bootstrap token.
struct Engine {
    bin: PathBuf,
    cpu: Option<usize>,
    token: String,
    /// The children's working directory: on PostgreSQL the server writes its generated edge
    /// pepper to `./keyledger-data`, which must not land wherever the bench was started.
    cwd: tempfile::TempDir,
}

/// How a server start ended.
enum Start {
    Ready(Server),
    /// It ended before it was ready; the last lines it printed.
    Exited(String),
}

impl Engine {
    fn new(bin: PathBuf, cpu: Option<usize>) -> anyhow::Result<Self> {
        Ok(Engine {
            bin,
            cpu,
            token: generate_admin_token(),
            cwd: tempfile::tempdir().context("cannot create a temporary directory")?,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match self.cpu {
            Some(cpu) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpu.to_string()).arg(&self.bin);
                cmd
            }
            None => Command::new(&self.bin),
        };
        cmd.args(args).env("RUST_LOG", "warn").current_dir(self.cwd.path());
        cmd
    }

    /// What `--version` says, and when the binary was built (which build a before/after run used).
    fn version(&self) -> String {
        let version = self
            .command(&["--version"])
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "version unknown".into());
        let built = std::fs::metadata(&self.bin)
            .and_then(|m| m.modified())
            .map(|t| DateTime::<Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|_| "unknown".into());
        format!("{version}, built {built}")
    }

    /// Starts `keyledger serve` and waits for both "listening" lines (printed once its read
    /// models have caught up with the log). Returns how long that took.
    async fn serve(&self, url: &str, patience: Duration) -> anyhow::Result<(Start, Duration)> {
        let started = Instant::now();
        let process = Process::spawn(self.command(&[
            "serve",
            "--database-url",
            url,
            "--admin-addr",
            "127.0.0.1:0",
            "--edge-addr",
            "127.0.0.1:0",
            "--bootstrap-token",
            &self.token,
            "--pbkdf2-iterations",
            "1000",
        ]))?;
        let deadline = started + patience;
        let (mut admin, mut edge) = (None, None);
        // When it printed its last line: an exit long after its error message is worth knowing.
        let mut last_line = Duration::ZERO;
        while admin.is_none() || edge.is_none() {
            match process.next_line(deadline).await {
                Next::Line(line) => {
                    last_line = line.at.duration_since(started);
                    if let Some(addr) = line.text.strip_prefix("admin listening on ") {
                        admin = Some(addr.trim().to_owned());
                    } else if let Some(addr) = line.text.strip_prefix("edge listening on ") {
                        edge = Some(addr.trim().to_owned());
                    }
                }
                Next::Closed => {
                    let mut process = process;
                    let status = process.exit_status()?;
                    let ended = started.elapsed();
                    let report = format!(
                        "{status} after {:.1} s, its last line printed at {:.1} s\n{}",
                        ended.as_secs_f64(),
                        last_line.as_secs_f64(),
                        process.tail()
                    );
                    return Ok((Start::Exited(report), ended));
                }
                Next::Timeout => bail!(
                    "the server was not ready within {} s; its last lines:\n{}",
                    patience.as_secs(),
                    process.tail()
                ),
            }
        }
        let server = Server {
            process,
            admin: admin.unwrap_or_default(),
        };
        Ok((Start::Ready(server), started.elapsed()))
    }

    /// A server that must come up (phases 1 and 2).
    async fn serve_ready(&self, url: &str, patience: Duration) -> anyhow::Result<(Server, Duration)> {
        match self.serve(url, patience).await? {
            (Start::Ready(server), took) => Ok((server, took)),
            (Start::Exited(tail), _) => bail!("the server stopped before it was ready:\n{tail}"),
        }
    }

    /// Runs a CLI command to its end; returns its output lines with when each was printed.
    async fn cli(&self, args: &[&str], patience: Duration) -> anyhow::Result<(Duration, Vec<(Duration, String)>)> {
        let started = Instant::now();
        let mut process = Process::spawn(self.command(args))?;
        let deadline = started + patience;
        let mut lines = Vec::new();
        loop {
            match process.next_line(deadline).await {
                Next::Line(line) => {
                    let at = line.at.duration_since(started);
                    println!("  ({:.1} s) {}", at.as_secs_f64(), line.text);
                    lines.push((at, line.text));
                }
                Next::Closed => break,
                Next::Timeout => bail!(
                    "`keyledger {}` did not finish within {} s; its last lines:\n{}",
                    args.join(" "),
                    patience.as_secs(),
                    process.tail()
                ),
            }
        }
        let status = process.exit_status()?;
        let took = started.elapsed();
        if !status.success() {
            bail!("`keyledger {}` failed ({status}):\n{}", args.join(" "), process.tail());
        }
        Ok((took, lines))
    }
}

/// A running `keyledger serve`.
struct Server {
    process: Process,
    /// `http://127.0.0.1:PORT`
    admin: String,
}

impl Server {
    fn stop(mut self) -> anyhow::Result<()> {
        let status = self.process.terminate(Duration::from_secs(30))?;
        // SIGTERM is a clean stop; 143 (killed by it) would mean the handler was missing.
        if !status.success() {
            println!("(the server ended with {status} on SIGTERM)");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The store, as the bench itself reaches it

/// Where the server keeps its events; the bench makes it empty before each use.
enum Store {
    Sqlite {
        dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        /// The same server's `postgres` database, to drop and create ours.
        admin_url: String,
        name: String,
    },
}

impl Store {
    async fn fresh(database_url: Option<&str>) -> anyhow::Result<Self> {
        let store = match database_url {
            None => Store::Sqlite {
                dir: tempfile::tempdir().context("cannot create a temporary directory")?,
            },
            Some(url) => {
                let mut admin = url::Url::parse(url).with_context(|| format!("invalid --database-url {url}"))?;
                let name = admin.path().trim_start_matches('/').to_owned();
                let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !plain || ["postgres", "template0", "template1"].contains(&name.as_str()) {
                    bail!("--database-url must name a database of its own (letters, digits, _): it is dropped and recreated");
                }
                admin.set_path("/postgres");
                Store::Postgres {
                    url: url.to_owned(),
                    admin_url: admin.to_string(),
                    name,
                }
            }
        };
        store.recreate_postgres().await?;
        Ok(store)
    }

    /// An empty store in place of this one.
    async fn renew(&mut self) -> anyhow::Result<()> {
        if let Store::Sqlite { dir } = self {
            *dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        }
        self.recreate_postgres().await
    }

    async fn recreate_postgres(&self) -> anyhow::Result<()> {
        let Store::Postgres { admin_url, name, .. } = self else {
            return Ok(());
        };
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("cannot connect to {}", keyledger_commands::redact_url(admin_url)))?;
        for sql in [
            format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
            format!(r#"CREATE DATABASE "{name}""#),
        ] {
            sqlx::raw_sql(&sql)
                .execute(&mut conn)
                .await
                .with_context(|| format!("cannot run {sql}"))?;
        }
        conn.close().await.context("cannot close the admin connection")?;
        Ok(())
    }

    fn url(&self) -> String {
        match self {
            Store::Sqlite { dir } => format!("sqlite://{}", sqlite_file(dir).display()),
            Store::Postgres { url, .. } => url.clone(),
        }
    }

    async fn describe(&self) -> String {
        match self {
            Store::Sqlite { dir } => format!("SQLite (WAL, synchronous=FULL) in {}", dir.path().display()),
            Store::Postgres { url, .. } => {
                let version = match PgPool::connect(url).await {
                    Ok(pool) => {
                        let v = sqlx::query_scalar::<_, String>("SHOW server_version")
                            .fetch_one(&pool)
                            .await
                            .unwrap_or_default();
                        pool.close().await;
                        v
                    }
                    Err(_) => String::new(),
                };
                format!("PostgreSQL {version} at {}", keyledger_commands::redact_url(url))
            }
        }
    }

    /// A pool of `connections`, with the settings the server uses on SQLite
    /// (commands/src/database.rs), so the raw baseline pays the same fsyncs.
    async fn connect(&self, connections: u32) -> anyhow::Result<Pool> {
        Ok(match self {
            Store::Sqlite { dir } => {
                let options = SqliteConnectOptions::new()
                    .filename(sqlite_file(dir))
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("temp_store", "memory");
                let pool = SqlitePoolOptions::new()
                    .max_connections(connections)
                    .connect_with(options)
                    .await
                    .context("cannot open the server's SQLite database")?;
                Pool::Sqlite(pool)
            }
            Store::Postgres { url, .. } => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await
                    .with_context(|| format!("cannot connect to {}", keyledger_commands::redact_url(url)))?,
            ),
        })
    }
}

fn sqlite_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("keyledger.db")
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The same code for both pools: sqlx's query functions are generic over the database.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

impl Pool {
    async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        on_pool!(self, p => sqlx::query(sql).execute(p).await.map(|_| ())).with_context(|| format!("cannot run {sql}"))
    }

    async fn insert_raw(&self, id: i64, payload: &str) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO bench_raw (id, payload) VALUES ($1, $2)";
        on_pool!(self, p => sqlx::query(sql).bind(id).bind(payload).execute(p).await.map(|_| ()))
    }

    /// The last global position (0 for an empty log).
    async fn head(&self) -> anyhow::Result<i64> {
        let sql = "SELECT CAST(COALESCE(MAX(global_position), 0) AS BIGINT) FROM events";
        on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).context("cannot read the log head")
    }

    /// Events in the log (positions may have holes on PostgreSQL).
    async fn count(&self) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM events";
        on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).context("cannot count the events")
    }

    /// The checkpoint of the projection furthest behind.
    async fn slowest_projection(&self) -> anyhow::Result<i64> {
        let sql = "SELECT CAST(COALESCE(MIN(position), 0) AS BIGINT) FROM projection_checkpoints";
        on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await)
            .context("cannot read the projection checkpoints")
    }

    /// Appends rows to the event store in one transaction, in multi-row INSERTs. The store's
    /// trigger assigns each its global position.
    async fn insert_events(&self, rows: &[EventRow]) -> anyhow::Result<()> {
        let postgres = matches!(self, Pool::Postgres(_));
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let sql = insert_sql(postgres, chunk.len());
                let mut query = sqlx::query(&sql);
                for row in chunk {
                    query = query
                        .bind(&row.aggregate_id)
                        .bind(row.sequence)
                        .bind(&row.event_type)
                        .bind(&row.payload)
                        .bind(&row.metadata);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .context("cannot append the seeded events")
    }

    async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// `INSERT INTO events … VALUES (…), (…)` for `rows` rows; PostgreSQL's payload and metadata
/// columns are `json`, which a text parameter reaches only through a cast.
fn insert_sql(postgres: bool, rows: usize) -> String {
    let json = if postgres { "::json" } else { "" };
    let mut sql = String::from(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ",
    );
    for row in 0..rows {
        let n = row * 5;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "('ApiKey', ${}, ${}, ${}, '1.0', ${}{json}, ${}{json})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5
        ));
    }
    sql
}

// ---------------------------------------------------------------------------------------------
// The admin API

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    auth: String,
}

/// How one PATCH ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patched {
    /// 200 and the answer shows the new limit.
    Applied,
    /// 200 but the answer shows another limit.
    Wrong,
    /// Another status.
    Refused,
}

impl Api {
    /// A client of its own: one keep-alive connection per client task.
    fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .context("cannot build an HTTP client")?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            auth: format!("Bearer {token}"),
        })
    }

    fn fork(&self) -> anyhow::Result<Self> {
        Api::new(&self.base, &self.token)
    }

    async fn create_key(&self, name: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({
            "name": name, "environment": "live", "scopes": ["FILES_READ"],
            "rate_limits": {"per_minute": 60, "per_hour": 3600}
        });
        let response = self
            .http
            .post(format!("{}/v1/keys", self.base))
            .header("Authorization", &self.auth)
            .json(&body)
            .send()
            .await
            .context("POST /v1/keys")?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.context("POST /v1/keys: not JSON")?;
        if status != reqwest::StatusCode::CREATED {
            bail!("POST /v1/keys answered {status}: {answer}");
        }
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("POST /v1/keys: no id in {answer}"))
    }

    /// Sets the key's per-minute limit; times the request up to the last byte of the answer.
    async fn patch(&self, id: &str, per_minute: u64) -> Result<(Duration, Patched), reqwest::Error> {
        let body = serde_json::json!({"rate_limits": {"per_minute": per_minute, "per_hour": 3600}});
        let started = Instant::now();
        let response = self
            .http
            .patch(format!("{}/v1/keys/{id}", self.base))
            .header("Authorization", &self.auth)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let took = started.elapsed();
        if status != reqwest::StatusCode::OK {
            return Ok((took, Patched::Refused));
        }
        let shown = per_minute_of(&bytes);
        Ok((
            took,
            if shown == Some(per_minute) {
                Patched::Applied
            } else {
                Patched::Wrong
            },
        ))
    }

    /// The key's per-minute limit as a GET shows it, and how long the GET took.
    async fn per_minute(&self, id: &str) -> anyhow::Result<(Duration, Option<u64>)> {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}/v1/keys/{id}", self.base))
            .header("Authorization", &self.auth)
            .send()
            .await
            .context("GET /v1/keys/{id}")?;
        let status = response.status();
        let bytes = response.bytes().await.context("GET /v1/keys/{id}: body")?;
        let took = started.elapsed();
        if status != reqwest::StatusCode::OK {
            bail!(
                "GET /v1/keys/{id} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok((took, per_minute_of(&bytes)))
    }

    async fn ready(&self) -> bool {
        match self.http.get(format!("{}/readyz", self.base)).send().await {
            Ok(response) => response.status() == reqwest::StatusCode::OK,
            Err(_) => false,
        }
    }
}

fn per_minute_of(body: &[u8]) -> Option<u64> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    answer["rate_limits"]["per_minute"].as_u64()
}

/// The n-th limit a client sets: every PATCH changes the key (consecutive values always differ)
/// and stays a valid limit below the hourly 3600.
fn nth_limit(n: u64) -> u64 {
    61 + n % 3_500
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Milliseconds at quantile `q` of sorted samples (nearest rank).
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[derive(Debug, Clone, Copy)]
struct Quantiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Quantiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Quantiles {
            p50: quantile_ms(&samples, 0.5),
            p90: quantile_ms(&samples, 0.9),
            p99: quantile_ms(&samples, 0.99),
            max: quantile_ms(&samples, 1.0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phase 1: unloaded command latency

struct Latency {
    rounds: usize,
    patch: Quantiles,
    get: Quantiles,
    /// GETs right after a PATCH that did not show its change yet.
    stale: usize,
    /// PATCHes that were not 200 or did not show the new value.
    failed: usize,
}

async fn latency_phase(api: &Api, rounds: usize) -> anyhow::Result<Latency> {
    println!("\n## 1. Unloaded command latency ({rounds} sequential PATCHes of one key, one client)");
    println!("load average: {}", load_average());
    let id = api.create_key("bench-0").await?;
    let (mut patches, mut gets) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let (mut stale, mut failed) = (0, 0);
    for n in 0..rounds as u64 {
        let limit = nth_limit(n);
        let (took, outcome) = api.patch(&id, limit).await.context("PATCH /v1/keys/{id}")?;
        if outcome != Patched::Applied {
            failed += 1;
            continue;
        }
        patches.push(took);
        // Read-your-writes: the command answered only after the read models had its event.
        let (took, shown) = api.per_minute(&id).await?;
        gets.push(took);
        if shown != Some(limit) {
            stale += 1;
        }
    }
    let latency = Latency {
        rounds,
        patch: Quantiles::of(patches),
        get: Quantiles::of(gets),
        stale,
        failed,
    };
    println!("| request | median | p90 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    for (label, q) in [
        ("PATCH /v1/keys/{id} (command)", latency.patch),
        ("GET /v1/keys/{id} right after (read model)", latency.get),
    ] {
        println!(
            "| {label} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            q.p50, q.p90, q.p99, q.max
        );
    }
    println!("read-your-writes violations (GET right after a PATCH without its change): {stale} of {rounds}");
    if failed > 0 {
        println!("PATCHes that failed (not 200, or the answer without the change): {failed}");
    }
    Ok(latency)
}

// ---------------------------------------------------------------------------------------------
// Phase 2: throughput against the database

/// One throughput run of either kind.
#[derive(Debug, Clone)]
struct Run {
    ok: u64,
    /// Non-200 answers, answers without the change, or failed requests/statements.
    failed: u64,
    seconds: f64,
    latency: Quantiles,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }
}

struct Throughput {
    runs: Vec<(Run, Run)>,
    raw: f64,
    commands: f64,
}

impl Throughput {
    fn ratio_of_medians(&self) -> f64 {
        self.commands / self.raw
    }

    fn median_of_ratios(&self) -> f64 {
        median(self.runs.iter().map(|(raw, cmd)| cmd.rate() / raw.rate()))
    }
}

/// What one client task counted.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    latencies: Vec<Duration>,
    /// Command runs: the number of the next limit this client's key is to be set to.
    next: u64,
}

async fn throughput_phase(args: &Args, store: &Store, server: &Server, token: &str) -> anyhow::Result<Throughput> {
    let clients = args.clients.max(1);
    println!(
        "\n## 2. Throughput against the database ({clients} clients, {} s per run, {} pairs)",
        args.duration, args.pairs
    );
    println!("load average: {}", load_average());
    let api = Api::new(&server.admin, token)?;
    let mut keys = Vec::with_capacity(clients);
    for i in 1..=clients {
        keys.push(api.create_key(&format!("bench-{i}")).await?);
    }
    let pool = store.connect(clients as u32).await?;
    pool.execute("CREATE TABLE IF NOT EXISTS bench_raw (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)")
        .await?;
    let seconds = Duration::from_secs(args.duration.max(1));
    // Shared by all raw runs: ids never repeat. Limits per key continue across runs, so every
    // PATCH changes its key.
    let next_id = Arc::new(AtomicI64::new(1));
    let mut sent = vec![0u64; clients];
    println!("| pair | run | per second | ok | failed | p50 | p99 |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    let mut runs = Vec::new();
    for pair in 1..=args.pairs.max(1) {
        let raw = raw_run(&pool, clients, seconds, &next_id).await?;
        print_run(pair, "raw INSERT, autocommit", &raw);
        let commands = command_run(&api, &keys, &mut sent, seconds).await?;
        print_run(pair, "PATCH /v1/keys/{id}", &commands);
        runs.push((raw, commands));
    }
    pool.close().await;
    let throughput = Throughput {
        raw: median(runs.iter().map(|(raw, _)| raw.rate())),
        commands: median(runs.iter().map(|(_, cmd)| cmd.rate())),
        runs,
    };
    println!();
    println!("| pair | raw commits/s | commands/s | commands ÷ raw |");
    println!("|---:|---:|---:|---:|");
    for (i, (raw, cmd)) in throughput.runs.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.0} | {:.3} |",
            i + 1,
            raw.rate(),
            cmd.rate(),
            cmd.rate() / raw.rate()
        );
    }
    println!(
        "| median | {:.0} | {:.0} | {:.3} (of the medians); {:.3} (median of the pairs) |",
        throughput.raw,
        throughput.commands,
        throughput.ratio_of_medians(),
        throughput.median_of_ratios()
    );
    Ok(throughput)
}

fn print_run(pair: usize, label: &str, run: &Run) {
    println!(
        "| {pair} | {label} | {:.0} | {} | {} | {:.2} ms | {:.2} ms |",
        run.rate(),
        run.ok,
        run.failed,
        run.latency.p50,
        run.latency.p99
    );
}

/// Waits for the client tasks of a run.
async fn gather(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> anyhow::Result<Vec<Tally>> {
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        tallies.push(task.await.context("a client task failed")?);
    }
    Ok(tallies)
}

impl Run {
    /// One run from its clients' tallies; the rate is over the time until the last one finished.
    fn of(tallies: Vec<Tally>, started: Instant) -> Self {
        let seconds = started.elapsed().as_secs_f64();
        let (ok, failed) = tallies
            .iter()
            .fold((0, 0), |(ok, failed), t| (ok + t.ok, failed + t.failed));
        let latencies = tallies.into_iter().flat_map(|t| t.latencies).collect();
        Run {
            ok,
            failed,
            seconds,
            latency: Quantiles::of(latencies),
        }
    }
}

/// `clients` tasks, each committing one-row INSERTs one after the other until the time is up.
async fn raw_run(pool: &Pool, clients: usize, seconds: Duration, next_id: &Arc<AtomicI64>) -> anyhow::Result<Run> {
    let started = Instant::now();
    let deadline = started + seconds;
    let tasks = (0..clients)
        .map(|_| {
            let (pool, next_id) = (pool.clone(), next_id.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    // What a PATCH appends: one event of about this size.
                    let payload = format!(
                        r#"{{"KeyRateLimitsChanged":{{"rate_limits":{{"per_second":null,"per_minute":{},"per_hour":3600,"per_day":null,"burst":null}},"at":"2026-12-03T07:00:00.000000Z"}}}}"#,
                        nth_limit(id as u64)
                    );
                    let begun = Instant::now();
                    match pool.insert_raw(id, &payload).await {
                        Ok(()) => {
                            tally.ok += 1;
                            tally.latencies.push(begun.elapsed());
                        }
                        Err(_) => tally.failed += 1,
                    }
                }
                tally
            })
        })
        .collect();
    Ok(Run::of(gather(tasks).await?, started))
}

/// One client per key, each PATCHing its key one request after the other until the time is up.
async fn command_run(api: &Api, keys: &[String], sent: &mut [u64], seconds: Duration) -> anyhow::Result<Run> {
    let started = Instant::now();
    let deadline = started + seconds;
    let mut tasks = Vec::with_capacity(keys.len());
    for (key, from) in keys.iter().zip(sent.iter()) {
        let (client, key, from) = (api.fork()?, key.clone(), *from);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally {
                next: from,
                ..Tally::default()
            };
            while Instant::now() < deadline {
                match client.patch(&key, nth_limit(tally.next)).await {
                    Ok((took, Patched::Applied)) => {
                        tally.ok += 1;
                        tally.latencies.push(took);
                    }
                    Ok(_) | Err(_) => tally.failed += 1,
                }
                tally.next += 1;
            }
            tally
        }));
    }
    let tallies = gather(tasks).await?;
    // The next run continues each key's sequence of limits, so its first PATCH changes the key too.
    for (next, tally) in sent.iter_mut().zip(&tallies) {
        *next = tally.next;
    }
    Ok(Run::of(tallies, started))
}

// ---------------------------------------------------------------------------------------------
// Phase 3: rebuild from a large store

/// One row of the `events` table as cqrs-es writes it (aggregate type "ApiKey", version "1.0").
struct EventRow {
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    payload: String,
    metadata: String,
}

/// xorshift64*: a fixed seed gives every run the same mix of events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A key being seeded: what its next event needs to know.
struct SeedKey {
    number: u64,
    id: uuid::Uuid,
    tenant: TenantId,
    environment: Environment,
    lookup: LookupId,
    /// cqrs-es numbers an aggregate's events from 1.
    next_sequence: i64,
    /// Events still to write, this one included.
    left: u32,
    /// Whether its last event revokes it (nothing follows a revocation).
    revoked_at_end: bool,
}

/// An endless log of valid ApiKey events: keys are issued, then changed (limits, scopes, IP
/// rules, names), rotated and some revoked, about 10 events per key, round-robin over a window of
/// keys so that consecutive events belong to different keys.
struct EventMix {
    rng: Rng,
    hash: SecretHash,
    window: Vec<SeedKey>,
    cursor: usize,
    keys: u64,
    at: DateTime<Utc>,
    counts: BTreeMap<String, u64>,
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl EventMix {
    fn new() -> anyhow::Result<Self> {
        // One real PBKDF2 hash (PHC string) for every key: the projections store it, never check it.
        let hash = SecretHasher::new(1_000).hash(generate_key(Environment::Live).expose());
        let mut mix = EventMix {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            hash,
            window: Vec::with_capacity(SEED_WINDOW),
            cursor: 0,
            keys: 0,
            // A month of history, 50 ms apart; well before any expiry, so the server's expiry
            // scheduler finds nothing to do.
            at: Utc::now() - chrono::Duration::days(30),
            counts: BTreeMap::new(),
        };
        for _ in 0..SEED_WINDOW {
            let key = mix.new_key()?;
            mix.window.push(key);
        }
        Ok(mix)
    }

    fn new_key(&mut self) -> anyhow::Result<SeedKey> {
        self.keys += 1;
        let tenant = match self.rng.below(10) {
            0..=6 => "default",
            7 | 8 => "acme",
            _ => "globex",
        };
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.rng.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.rng.next().to_le_bytes());
        Ok(SeedKey {
            number: self.keys,
            id: uuid::Builder::from_random_bytes(bytes).into_uuid(),
            tenant: TenantId::try_from(tenant.to_owned())?,
            environment: if self.rng.chance(80) {
                Environment::Live
            } else {
                Environment::Test
            },
            lookup: self.lookup_id()?,
            next_sequence: 1,
            left: 4 + self.rng.below(13) as u32,
            revoked_at_end: self.rng.chance(30),
        })
    }

    /// Random, as real lookup ids are (the lookup table's primary key sees the same inserts).
    fn lookup_id(&mut self) -> anyhow::Result<LookupId> {
        let id: String = (0..12).map(|_| BASE62[self.rng.below(62) as usize] as char).collect();
        LookupId::try_from(id).context("a generated lookup id")
    }

    fn scopes(&mut self) -> anyhow::Result<BTreeSet<Scope>> {
        (0..1 + self.rng.below(4))
            .map(|_| {
                let name = CATALOGUE[self.rng.below(CATALOGUE.len() as u64) as usize];
                Scope::try_from(name.to_owned()).context("a catalogue scope")
            })
            .collect()
    }

    fn rate_limits(&mut self) -> anyhow::Result<RateLimits> {
        let input = RateLimitsInput {
            per_second: self.rng.chance(30).then(|| 1 + self.rng.below(50)),
            per_minute: Some(10 + self.rng.below(990)),
            per_hour: Some(1_000 + self.rng.below(50_000)),
            per_day: self.rng.chance(20).then(|| 100_000 + self.rng.below(900_000)),
            burst: self.rng.chance(20).then(|| 5 + self.rng.below(45)),
        };
        RateLimits::try_from(input).context("generated rate limits")
    }

    fn ip_rules(&mut self) -> anyhow::Result<IpRules> {
        let allow = (0..self.rng.below(3))
            .map(|_| format!("10.{}.{}.0/24", self.rng.below(256), self.rng.below(256)))
            .map(CidrRule::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let block = (0..self.rng.below(2))
            .map(|_| format!("192.0.2.{}", self.rng.below(256)))
            .map(CidrRule::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IpRules::new(allow, block)?)
    }

    /// The next event of the log.
    fn next_row(&mut self) -> anyhow::Result<EventRow> {
        self.at += chrono::Duration::milliseconds(50);
        let at = self.at;
        let slot = self.cursor;
        self.cursor = (self.cursor + 1) % SEED_WINDOW;
        let event = self.event_for(slot, at)?;
        let key = &mut self.window[slot];
        let row = EventRow {
            aggregate_id: key.id.to_string(),
            sequence: key.next_sequence,
            event_type: event.event_type(),
            // Through a Value, as cqrs-es stores it: the same bytes, keys in sorted order.
            payload: serde_json::to_value(&event).context("an event as JSON")?.to_string(),
            metadata: serde_json::json!({
                "actor": "system",
                "tenant": key.tenant.as_str(),
                "time": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            })
            .to_string(),
        };
        key.next_sequence += 1;
        key.left -= 1;
        if key.left == 0 {
            self.window[slot] = self.new_key()?;
        }
        *self.counts.entry(row.event_type.clone()).or_default() += 1;
        Ok(row)
    }

    /// What happens next to the key in `slot`: issued first, revoked last (for some), and in
    /// between the changes admins make most.
    fn event_for(&mut self, slot: usize, at: DateTime<Utc>) -> anyhow::Result<ApiKeyEvent> {
        let (first, last, revoke) = {
            let key = &self.window[slot];
            (key.next_sequence == 1, key.left == 1, key.revoked_at_end)
        };
        if first {
            let scopes = self.scopes()?;
            let rate_limits = self.rate_limits()?;
            let ip_rules = self.ip_rules()?;
            let expires_at = self.rng.chance(20).then(|| Utc::now() + chrono::Duration::days(365));
            let key = &self.window[slot];
            return Ok(ApiKeyEvent::KeyIssued {
                key_id: key.id,
                tenant: key.tenant.clone(),
                name: Name::try_from(format!("seeded key {}", key.number))?,
                environment: key.environment,
                lookup_id: key.lookup.clone(),
                secret_hash: self.hash.clone(),
                scopes,
                rate_limits,
                ip_rules,
                expires_at,
                at,
            });
        }
        if last && revoke {
            let reason = self.rng.chance(50).then(|| "no longer used".to_owned());
            return Ok(ApiKeyEvent::KeyRevoked { reason, at });
        }
        Ok(match self.rng.below(100) {
            0..=29 => ApiKeyEvent::KeyRateLimitsChanged {
                rate_limits: self.rate_limits()?,
                at,
            },
            30..=54 => ApiKeyEvent::KeyScopesChanged {
                scopes: self.scopes()?,
                at,
            },
            55..=69 => ApiKeyEvent::KeyIpRulesChanged {
                ip_rules: self.ip_rules()?,
                at,
            },
            70..=84 => {
                let key = &self.window[slot];
                ApiKeyEvent::KeyRenamed {
                    name: Name::try_from(format!("seeded key {} v{}", key.number, key.next_sequence))?,
                    at,
                }
            }
            _ => {
                let lookup_id = self.lookup_id()?;
                let key = &mut self.window[slot];
                let previous_lookup_id = std::mem::replace(&mut key.lookup, lookup_id.clone());
                ApiKeyEvent::KeyRotated {
                    lookup_id,
                    secret_hash: self.hash.clone(),
                    previous_lookup_id,
                    previous_valid_until: at + chrono::Duration::days(1),
                    at,
                }
            }
        })
    }
}

/// Writes `events` events of the mix straight into the store's `events` table.
async fn seed(pool: &Pool, events: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut mix = EventMix::new()?;
    let (mut done, mut report_at) = (0u64, 100_000u64);
    let mut rows = Vec::with_capacity(ROWS_PER_TRANSACTION);
    while done < events {
        rows.clear();
        let n = (events - done).min(ROWS_PER_TRANSACTION as u64);
        for _ in 0..n {
            rows.push(mix.next_row()?);
        }
        pool.insert_events(&rows).await?;
        done += n;
        while done >= report_at {
            println!(
                "  seeded {report_at} of {events} events ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            report_at += 100_000;
        }
    }
    let counts: Vec<String> = mix.counts.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    println!(
        "  seeded {done} events of {} keys in {:.1} s: {}",
        mix.counts.get("KeyIssued").copied().unwrap_or(0),
        started.elapsed().as_secs_f64(),
        counts.join(", ")
    );
    Ok(())
}

struct Rebuild {
    /// Events in the log that was rebuilt (the seeded ones and those of phases 1 and 2).
    events: i64,
    took: Duration,
    /// Each read model's rebuild time, in the CLI's order (the first includes start-up and
    /// migrations).
    models: Vec<(String, Duration)>,
    /// Events in the second store, and the time from spawning the server until it was ready.
    live_events: i64,
    live_took: Duration,
    restarts: usize,
}

async fn rebuild_phase(args: &Args, engine: &Engine, store: &mut Store) -> anyhow::Result<Rebuild> {
    println!(
        "\n## 3. Rebuild from a large store ({} seeded events, about 10 per key)",
        args.events
    );
    println!("load average: {}", load_average());
    let url = store.url();
    let pool = store.connect(1).await?;
    seed(&pool, args.events).await?;
    let events = pool.count().await?;
    pool.close().await;

    println!(
        "  keyledger projections rebuild (all read models) over {events} events (load average {}) …",
        load_average()
    );
    let (took, lines) = engine
        .cli(
            &["projections", "rebuild", "--database-url", &url],
            Duration::from_secs(6 * 3600),
        )
        .await?;
    let mut models = Vec::new();
    let mut previous = Duration::ZERO;
    for (at, text) in &lines {
        if let Some((model, _)) = text.split_once(": rebuilt up to position") {
            models.push((model.trim().to_owned(), at.saturating_sub(previous)));
            previous = *at;
        }
    }

    println!(
        "  a second store seeded the same way, then `keyledger serve` on it (load average {}) …",
        load_average()
    );
    store.renew().await?;
    let url = store.url();
    engine.cli(&["migrate", "--database-url", &url], START_PATIENCE).await?;
    let pool = store.connect(1).await?;
    seed(&pool, args.events).await?;
    let live_events = pool.count().await?;
    let (live_took, restarts) = catch_up(engine, &url, &pool).await?;
    pool.close().await;

    let rebuild = Rebuild {
        events,
        took,
        models,
        live_events,
        live_took,
        restarts,
    };
    rebuild.print();
    Ok(rebuild)
}

/// Starts a server on a seeded store and times it until `/readyz` answers 200. The server waits
/// up to 60 s for its projections before it serves; when it gives up (and exits), it is started
/// again and the clock keeps running: the projections resume from their checkpoints.
async fn catch_up(engine: &Engine, url: &str, pool: &Pool) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let head = pool.head().await?;
    let progress = tokio::spawn(report_progress(pool.clone(), head, started));
    let mut restarts = 0;
    let server = loop {
        match engine.serve(url, Duration::from_secs(6 * 3600)).await {
            Ok((Start::Ready(server), _)) => break server,
            Ok((Start::Exited(tail), _)) if tail.contains("did not catch up") && restarts < MAX_RESTARTS => {
                restarts += 1;
                println!(
                    "  ({:.0} s) the server gave up waiting for its projections ({}); starting it again",
                    started.elapsed().as_secs_f64(),
                    tail.lines().next().unwrap_or_default()
                );
            }
            Ok((Start::Exited(tail), _)) => {
                progress.abort();
                bail!("the server stopped before it was ready:\n{tail}");
            }
            Err(e) => {
                progress.abort();
                return Err(e);
            }
        }
    };
    // An older build may serve before its projections caught up: ready means /readyz says so.
    let api = Api::new(&server.admin, &engine.token)?;
    let deadline = Instant::now() + Duration::from_secs(6 * 3600);
    while !api.ready().await {
        if Instant::now() >= deadline {
            progress.abort();
            bail!("/readyz never answered 200");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    progress.abort();
    server.stop()?;
    Ok((took, restarts))
}

/// A line every 10 s while the projections catch up, so a long run shows it is moving.
async fn report_progress(pool: Pool, head: i64, started: Instant) {
    let mut at = 0;
    while at < head {
        tokio::time::sleep(Duration::from_secs(10)).await;
        if let Ok(position) = pool.slowest_projection().await {
            at = position;
            println!(
                "  ({:.0} s) slowest projection at {at} of {head}",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Rebuild {
    fn rate(&self) -> f64 {
        self.events as f64 / self.took.as_secs_f64()
    }

    fn live_rate(&self) -> f64 {
        self.live_events as f64 / self.live_took.as_secs_f64()
    }

    fn print(&self) {
        println!();
        println!("| run | events | seconds | events/s |");
        println!("|---|---:|---:|---:|");
        println!(
            "| `keyledger projections rebuild`, all read models | {} | {:.1} | {:.0} |",
            self.events,
            self.took.as_secs_f64(),
            self.rate()
        );
        for (i, (model, took)) in self.models.iter().enumerate() {
            let note = if i == 0 { " (with start-up)" } else { "" };
            println!(
                "| … {model}{note} | {} | {:.1} | {:.0} |",
                self.events,
                took.as_secs_f64(),
                self.events as f64 / took.as_secs_f64()
            );
        }
        println!(
            "| `keyledger serve` on a seeded store: spawn → /readyz 200 ({} restarts) | {} | {:.1} | {:.0} |",
            self.restarts,
            self.live_events,
            self.live_took.as_secs_f64(),
            self.live_rate()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Summary

struct Summary {
    date: DateTime<Utc>,
    backend: String,
    version: String,
    start_empty: Duration,
    latency: Latency,
    throughput: Throughput,
    rebuild: Option<Rebuild>,
    source: (PathBuf, String),
}

/// The source tree this bench was built from, and its HEAD commit now (read only).
fn source_commit() -> (PathBuf, String) {
    let api = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = api.parent().unwrap_or(api).to_path_buf();
    let commit = Command::new("git")
        .arg("-C")
        .arg(&source)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    (source, commit)
}

/// The 1, 5 and 15 minute load averages: on a shared two-core machine, whether something else
/// ran beside the bench (the bench and the server alone account for about 2).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

impl Summary {
    fn print(&self, args: &Args, engine: &Engine, pin: Option<Pinning>) {
        let (source, commit) = &self.source;
        let command: Vec<String> = std::env::args().collect();
        let (l, t) = (&self.latency, &self.throughput);
        println!("\n## Summary");
        println!(
            "date: {} (load average at the end: {})",
            self.date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            load_average()
        );
        println!("backend: {}", self.backend);
        println!(
            "bench built from: {} (its HEAD when the run started: {commit})",
            source.display()
        );
        println!("server binary: {} ({})", engine.bin.display(), self.version);
        println!("command: {}", command.join(" "));
        match pin {
            Some(p) => println!("cores: server {}, bench {}", p.server, p.client),
            None => println!("cores: not pinned"),
        }
        println!(
            "server ready on an empty store: {:.2} s",
            self.start_empty.as_secs_f64()
        );
        println!(
            "command latency, unloaded ({} rounds): median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
            l.rounds, l.patch.p50, l.patch.p90, l.patch.p99
        );
        println!("GET right after, median: {:.2} ms", l.get.p50);
        println!("read-your-writes violations: {} of {}", l.stale, l.rounds);
        if l.failed > 0 {
            println!("failed PATCHes in the latency run: {}", l.failed);
        }
        println!(
            "raw commits/s, median of {}: {:.0} ({} clients)",
            t.runs.len(),
            t.raw,
            args.clients
        );
        println!("commands/s, median of {}: {:.0}", t.runs.len(), t.commands);
        println!(
            "commands ÷ raw: {:.3} (medians), {:.3} (median of the pairs)",
            t.ratio_of_medians(),
            t.median_of_ratios()
        );
        match &self.rebuild {
            Some(r) => {
                println!(
                    "projections rebuild: {} events in {:.1} s = {:.0} events/s",
                    r.events,
                    r.took.as_secs_f64(),
                    r.rate()
                );
                println!(
                    "live catch-up (serve until /readyz 200): {} events in {:.1} s = {:.0} events/s, {} restarts",
                    r.live_events,
                    r.live_took.as_secs_f64(),
                    r.live_rate(),
                    r.restarts
                );
            }
            None => println!("rebuild: skipped"),
        }
    }
}
