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

mod api;
mod latency;
mod process;
mod rebuild;
mod seed;
mod stats;
mod store;
mod summary;
mod throughput;

use api::*;
use latency::*;
use process::*;
use rebuild::*;
use seed::*;
use stats::*;
use store::*;
use summary::*;
use throughput::*;

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
