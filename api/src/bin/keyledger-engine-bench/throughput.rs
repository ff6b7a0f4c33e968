//! Phase 2: commands at N clients against raw one-row INSERTs on the same database.

use super::*;

/// One throughput run of either kind.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) ok: u64,
    /// Non-200 answers, answers without the change, or failed requests/statements.
    pub(crate) failed: u64,
    pub(crate) seconds: f64,
    pub(crate) latency: Quantiles,
}

impl Run {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }
}

pub(crate) struct Throughput {
    pub(crate) runs: Vec<(Run, Run)>,
    pub(crate) raw: f64,
    pub(crate) commands: f64,
}

impl Throughput {
    pub(crate) fn ratio_of_medians(&self) -> f64 {
        self.commands / self.raw
    }

    pub(crate) fn median_of_ratios(&self) -> f64 {
        median(self.runs.iter().map(|(raw, cmd)| cmd.rate() / raw.rate()))
    }
}

/// What one client task counted.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) latencies: Vec<Duration>,
    /// Command runs: the number of the next limit this client's key is to be set to.
    pub(crate) next: u64,
}

pub(crate) async fn throughput_phase(
    args: &Args,
    store: &Store,
    server: &Server,
    token: &str,
) -> anyhow::Result<Throughput> {
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

pub(crate) fn print_run(pair: usize, label: &str, run: &Run) {
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
pub(crate) async fn gather(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> anyhow::Result<Vec<Tally>> {
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        tallies.push(task.await.context("a client task failed")?);
    }
    Ok(tallies)
}

impl Run {
    /// One run from its clients' tallies; the rate is over the time until the last one finished.
    pub(crate) fn of(tallies: Vec<Tally>, started: Instant) -> Self {
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
pub(crate) async fn raw_run(
    pool: &Pool,
    clients: usize,
    seconds: Duration,
    next_id: &Arc<AtomicI64>,
) -> anyhow::Result<Run> {
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
pub(crate) async fn command_run(
    api: &Api,
    keys: &[String],
    sent: &mut [u64],
    seconds: Duration,
) -> anyhow::Result<Run> {
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
