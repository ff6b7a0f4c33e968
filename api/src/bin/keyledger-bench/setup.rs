//! The bench's flags, and the configuration of the Keyledger it starts.

use super::*;

/// The edge benchmark (README: "Benchmarks").
#[derive(clap::Parser, Debug)]
#[command(name = "keyledger-bench")]
pub(crate) struct Args {
    /// Keys to seed (all are served after the restart run).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) keys: usize,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    pub(crate) duration: u64,
    /// wrk connections for the saturating runs.
    #[arg(long, default_value_t = 32)]
    pub(crate) connections: usize,
    /// Bare-204 and `/auth` runs, alternated; the report gives medians.
    #[arg(long, default_value_t = 3)]
    pub(crate) pairs: usize,
    /// Requests/s for the latency comparison at equal load (paced connections).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) paced_rate: usize,
    /// Run against this database instead of SQLite in a temporary directory.
    #[arg(long)]
    pub(crate) database_url: Option<String>,
    /// Measure revocation propagation between two nodes on this PostgreSQL database instead.
    #[arg(long)]
    pub(crate) propagation: Option<String>,
    /// Revocations for --propagation.
    #[arg(long, default_value_t = 200)]
    pub(crate) rounds: usize,
    /// Records for the usage-writer run.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) usage_records: usize,
    /// Invalid-key requests per second beside the valid traffic.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) flood_rate: usize,
    /// Run the usage benchmark instead: this many records over 90 days, then analytics queries.
    #[arg(long)]
    pub(crate) usage_query: Option<usize>,
    /// Run the ingestion benchmark instead, wrk runs of this many seconds against a `keyledger
    /// serve` process: steady, then across a SIGTERM and a SIGKILL.
    #[arg(long)]
    pub(crate) usage_ingest: Option<u64>,
    /// Keys for --usage-query.
    #[arg(long, default_value_t = 200)]
    pub(crate) usage_keys: usize,
    /// Endpoints for --usage-query.
    #[arg(long, default_value_t = 40)]
    pub(crate) usage_endpoints: usize,
    /// Times each analytics query is asked for --usage-query.
    #[arg(long, default_value_t = 20)]
    pub(crate) usage_queries: usize,
    /// Run the webhook benchmark instead: this many deliveries from a backlog to a local
    /// receiver, then deliveries at a steady rate for their latency.
    #[arg(long)]
    pub(crate) webhooks: Option<usize>,
    /// Subscriptions for --webhooks; each event goes to every one.
    #[arg(long, default_value_t = 10)]
    pub(crate) webhook_subscriptions: usize,
    /// Deliveries per second in --webhooks' steady run.
    #[arg(long, default_value_t = 2_000)]
    pub(crate) webhook_rate: usize,
    /// Run the million-key benchmark instead with this many keys (README: "A million keys"):
    /// restart time, memory per key, PBKDF2 checks and `/auth` throughput against 1 000 keys.
    #[arg(long)]
    pub(crate) million: Option<usize>,
    /// Where --million keeps its seeded key sets (seeded once, reused by later runs).
    #[arg(long)]
    pub(crate) million_dir: Option<std::path::PathBuf>,
    /// --million with every key on settings of its own (a rate limit each) instead of one plan.
    #[arg(long)]
    pub(crate) million_unique: bool,
    /// Keys of the large set cycled in --million's third run.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) million_distinct: usize,
    /// Keys issued at once while --million seeds.
    #[arg(long, default_value_t = 64)]
    pub(crate) million_seeders: usize,
}

/// The database a run uses: `--database-url`, else a SQLite file `file` in `dir` (a temporary
/// directory the run removes).
pub(crate) fn database_url(a: &Args, dir: &std::path::Path, file: &str) -> String {
    a.database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join(file).display()))
}

pub(crate) fn config(url: &str) -> Config {
    Config {
        db: DbArgs {
            database_url: url.to_owned(),
        },
        serve: ServeArgs {
            admin_addr: "127.0.0.1:0".parse().unwrap(),
            edge_addr: "127.0.0.1:0".parse().unwrap(),
            public_edge_url: None,
            edge_pepper: Some(format!("bench-pepper-{}", "0123456789abcdef0123456789abcdef")),
            trusted_proxies: vec![],
            pbkdf2_concurrency: 2,
            bootstrap_token: Some("kla_bench_bootstrap_token_0123456789".into()),
            // Seeding 10 000 keys at 600 000 iterations would take 13 minutes of hashing that the
            // edge never repeats (it verifies with HMAC); the count is stored in each hash.
            pbkdf2_iterations: 10_000,
            expiry_check_seconds: 3600.0,
            usage_retention_days: 30,
            usage_spool_dir: Some(spool_dir()),
            usage_spool_max_mb: 4096,
            webhook_allow_cidrs: vec!["127.0.0.1/32".parse().unwrap()],
            webhook_retry_schedule: Default::default(),
            webhook_timeout_seconds: 15.0,
            webhook_concurrency: 64,
            webhook_subscription_concurrency: 8,
            webhook_disable_after_hours: 120.0,
            alert_check_seconds: 60.0,
            webhook_log_retention_days: 30,
        },
    }
}

/// A spool directory of its own for each node the benchmark starts (a node refuses one that
/// another holds), under the system's temporary directory.
pub(crate) fn spool_dir() -> std::path::PathBuf {
    std::env::temp_dir()
        .join("keyledger-bench-spool")
        .join(uuid::Uuid::new_v4().to_string())
}

/// The flood: 500 keys a naive edge would spend PBKDF2 on, all well-formed (right checksum),
/// half with the lookup ids of real keys and wrong secrets, half with unknown lookup ids.
pub(crate) fn flood_keys(keys: &[String]) -> Vec<String> {
    keys.iter()
        .skip(1)
        .take(500)
        .enumerate()
        .map(|(i, key)| {
            let real = PlaintextKey::parse(key).expect("a seeded key");
            let lookup = if i % 2 == 0 {
                real.lookup_id().clone()
            } else {
                LookupId::try_from(format!("{:0>12}", i)).expect("a base62 lookup id")
            };
            PlaintextKey::compose(Environment::Live, lookup, &"x".repeat(24))
                .expect("a well-formed key")
                .expose()
                .to_owned()
        })
        .collect()
}
