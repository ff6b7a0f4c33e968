//! The million-key benchmark (`--million N`, README: "A million keys"): one set of 1 000 keys
//! and one of N, each seeded once through the command bus into a directory of its own (kept
//! for later runs), each served by a `keyledger serve` child process on core 0, with this
//! process and wrk on core 1. For each node: the time from spawn to its first `/auth` answer,
//! its resident memory once serving. Then `/auth` throughput, the two nodes alternated: 1 000
//! keys cycled on each, and `--million-distinct` keys of the large set on the large node. Then
//! the large node restarted, and the time until it serves again. Last, every key of each set
//! presented once, and the PBKDF2 checks that took. Each run starts its
//! sets without the usage earlier runs left in them.

use super::million_node::{Node, FORWARD};
use super::million_seed::{key_set, KeySet, Plans};
use super::*;

/// Keys cycled through in the runs that compare the two nodes alike.
const SAME_KEYS: usize = 1_000;

/// What one node showed before the throughput runs.
struct Start {
    serving_after: Duration,
    rss: u64,
    peak: u64,
}

/// What one node showed when every key of its set was presented once, after the throughput
/// runs: a million keys once each leave the rollups minutes of work (eight cells a key), which
/// would run beside the throughput runs.
struct Pass {
    took: Duration,
    pbkdf2: u64,
    rss_after: u64,
}

/// One wrk run against one node.
#[derive(Clone, Copy)]
struct Run {
    wrk: Wrk,
    /// The node's CPU per answered request, µs.
    cpu_us: f64,
}

pub(crate) async fn million(a: &Args, n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(n > SAME_KEYS, "--million takes more than {SAME_KEYS} keys");
    let root = a
        .million_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("keyledger-million"));
    let plans = if a.million_unique { Plans::Unique } else { Plans::Shared };
    let base = a.database_url.as_deref();
    println!(
        "# Keyledger at {n} keys ({}): sets under {}, {}",
        match plans {
            Plans::Shared => "every key on one plan",
            Plans::Unique => "every key with settings of its own",
        },
        root.display(),
        base.map_or("SQLite".to_owned(), keyledger_commands::redact_url)
    );
    let small = key_set(&root, base, SAME_KEYS, plans, a.million_seeders).await?;
    let large = key_set(&root, base, n, plans, a.million_seeders).await?;
    for set in [&small, &large] {
        fresh_usage(set).await?;
    }
    // The nodes get core 0 (taskset); this process and wrk take core 1.
    if !pin::move_to_load_core() {
        println!("# could not move to core 1: the nodes and the load generator share the cores");
    }

    let small_node = Node::start(&small).await?;
    let small_start = started(&small_node, &small).await?;
    let large_node = Node::start(&large).await?;
    let large_start = started(&large_node, &large).await?;

    let dir = tempfile::tempdir()?;
    let distinct = a.million_distinct.min(n);
    let scripts = [
        wrk_script(dir.path(), "small", "/auth", &FORWARD, &small.keys[..SAME_KEYS], 0)?,
        wrk_script(dir.path(), "large", "/auth", &FORWARD, &large.keys[..SAME_KEYS], 0)?,
        wrk_script(dir.path(), "distinct", "/auth", &FORWARD, &large.keys[..distinct], 0)?,
    ];
    let targets = [&small_node, &large_node, &large_node];
    let mut rounds: Vec<[Run; 3]> = Vec::new();
    for _ in 0..a.pairs.max(1) {
        let mut round = Vec::with_capacity(3);
        for (node, script) in targets.iter().zip(&scripts) {
            round.push(run(node, script, a).await);
        }
        // As it goes: the pass at the end takes minutes, and a run stopped before it still
        // shows its throughput.
        println!(
            "/auth, {SAME_KEYS} keys cycled: {:.0} req/s ({:.1} µs CPU) at {SAME_KEYS} keys, {:.0} req/s ({:.1} µs) at {n}; {distinct} distinct: {:.0} req/s ({:.1} µs)",
            round[0].wrk.rps, round[0].cpu_us, round[1].wrk.rps, round[1].cpu_us, round[2].wrk.rps, round[2].cpu_us
        );
        rounds.push([round[0], round[1], round[2]]);
    }
    // A restart proper: the large node stopped and started again, the operating system's cache
    // as the first start left it.
    large_node.stop()?;
    let large_node = Node::start(&large).await?;
    let restart = large_node.serving_after;
    println!(
        "{} keys: serving {:.2} s after a restart",
        large.n,
        restart.as_secs_f64()
    );
    let small_pass = pass(&small_node, &small).await?;
    let large_pass = pass(&large_node, &large).await?;
    small_node.stop()?;
    large_node.stop()?;
    report(
        a,
        (n, distinct, restart),
        (&small, &small_start, &small_pass),
        (&large, &large_start, &large_pass),
        &rounds,
    );
    Ok(())
}

/// Starts a reused set without the usage earlier runs left in its database or its spool.
async fn fresh_usage(set: &KeySet) -> anyhow::Result<()> {
    let db = keyledger_commands::Database::connect(&set.url).await?;
    keyledger_projections::usage::retention::forget_all(&db).await?;
    match std::fs::remove_dir_all(set.dir.join("spool")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// What a node showed from its spawn until it was serving, and once idle.
async fn started(node: &Node, set: &KeySet) -> anyhow::Result<Start> {
    // Whatever the start left running (a first rollup step, the allocator returning what the
    // load used) ends before memory is read.
    node.settle().await;
    let (rss, peak) = (node.memory("VmRSS"), node.memory("VmHWM"));
    println!(
        "{} keys: serving {:.2} s after spawn; {:.1} MB resident",
        set.n,
        node.serving_after.as_secs_f64(),
        rss as f64 / 1e6,
    );
    if let Some(line) = std::fs::read_to_string(set.dir.join("server.log"))
        .unwrap_or_default()
        .lines()
        .rfind(|l| l.contains("edge cache loaded"))
    {
        println!("  {}", line.trim());
    }
    Ok(Start {
        serving_after: node.serving_after,
        rss,
        peak,
    })
}

/// Every key of the set presented once, and the PBKDF2 checks that took.
async fn pass(node: &Node, set: &KeySet) -> anyhow::Result<Pass> {
    let http = reqwest::Client::new();
    let before = node.pbkdf2(&http).await?;
    let took = node.serve_all(&set.keys, 32).await?;
    let pbkdf2 = node.pbkdf2(&http).await? - before;
    println!(
        "{} keys: every key served once in {:.1} s, {pbkdf2} PBKDF2 checks",
        set.n,
        took.as_secs_f64()
    );
    Ok(Pass {
        took,
        pbkdf2,
        rss_after: node.memory("VmRSS"),
    })
}

async fn run(node: &Node, script: &std::path::Path, a: &Args) -> Run {
    let cpu = node.cpu();
    let wrk = wrk(
        &format!("{}/auth", node.edge),
        a.connections,
        a.duration,
        Some(script),
        &[],
    );
    let used = node.cpu() - cpu;
    // The node's usage writer and rollups finish this run's records before the next run.
    node.settle().await;
    assert_eq!(wrk.non_2xx, 0, "every /auth answer must be 204");
    Run {
        wrk,
        cpu_us: used.as_secs_f64() * 1e6 / (wrk.requests.max(1)) as f64,
    }
}

fn report(
    a: &Args,
    (n, distinct, restart): (usize, usize, Duration),
    small: (&KeySet, &Start, &Pass),
    large: (&KeySet, &Start, &Pass),
    rounds: &[[Run; 3]],
) {
    let mb = |b: u64| b as f64 / 1e6;
    println!();
    println!("| keys | serving after spawn | resident once serving (peak) | every key once: time, PBKDF2 checks | resident after |");
    println!("|---:|---:|---:|---:|---:|");
    for (set, s, p) in [small, large] {
        println!(
            "| {} | {:.2} s | {:.1} MB ({:.1} MB) | {:.1} s, {} | {:.1} MB |",
            set.n,
            s.serving_after.as_secs_f64(),
            mb(s.rss),
            mb(s.peak),
            p.took.as_secs_f64(),
            p.pbkdf2,
            mb(p.rss_after)
        );
    }
    let per_key = |bytes: fn(&Start, &Pass) -> u64| {
        (bytes(large.1, large.2) as f64 - bytes(small.1, small.2) as f64) / (large.0.n - small.0.n) as f64
    };
    println!();
    println!(
        "| run | 1 000-key node: {SAME_KEYS} keys | {n}-key node: {SAME_KEYS} keys | {n}-key node: {distinct} keys |"
    );
    println!("|---|---:|---:|---:|");
    for (i, round) in rounds.iter().enumerate() {
        let cells: Vec<String> = round
            .iter()
            .map(|r| format!("{:.0}/s, {:.1} µs CPU", r.wrk.rps, r.cpu_us))
            .collect();
        println!("| {} | {} |", i + 1, cells.join(" | "));
    }
    let ratio = |j: usize| median(rounds.iter().map(|r| r[j].wrk.rps / r[0].wrk.rps));
    let cpu_ratio = |j: usize| median(rounds.iter().map(|r| r[0].cpu_us / r[j].cpu_us));
    println!();
    println!(
        "memory per key: {:.0} B once serving (target ≤ 512), {:.0} B after every key was presented once",
        per_key(|s, _| s.rss),
        per_key(|_, p| p.rss_after)
    );
    println!(
        "restart with {n} keys: serving after {:.2} s (target ≤ 5 s; the first start {:.2} s); PBKDF2 checks serving every key: {} (target 0)",
        restart.as_secs_f64(),
        large.1.serving_after.as_secs_f64(),
        large.2.pbkdf2
    );
    println!(
        "/auth throughput, {n} ÷ 1 000 keys, median of {} rounds: {:.3} with {SAME_KEYS} keys cycled (target ≥ 0.95), {:.3} with {distinct}; from server CPU per request: {:.3} and {:.3}",
        rounds.len(),
        ratio(1),
        ratio(2),
        cpu_ratio(1),
        cpu_ratio(2)
    );
    if let Some(load) = pin::busiest_load() {
        println!(
            "wrk ({} connections, {} s a run): {:.0} % of its core in its busiest run",
            a.connections,
            a.duration,
            load * 100.0
        );
    }
}
