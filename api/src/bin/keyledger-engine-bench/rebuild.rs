//! Phase 3: `projections rebuild` and a server catching up, over a seeded store.

use super::*;

pub(crate) struct Rebuild {
    /// Events in the log that was rebuilt (the seeded ones and those of phases 1 and 2).
    pub(crate) events: i64,
    pub(crate) took: Duration,
    /// Each read model's rebuild time, in the CLI's order (the first includes start-up and
    /// migrations).
    pub(crate) models: Vec<(String, Duration)>,
    /// Events in the second store, and the time from spawning the server until it was ready.
    pub(crate) live_events: i64,
    pub(crate) live_took: Duration,
    pub(crate) restarts: usize,
}

pub(crate) async fn rebuild_phase(args: &Args, engine: &Engine, store: &mut Store) -> anyhow::Result<Rebuild> {
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
pub(crate) async fn catch_up(engine: &Engine, url: &str, pool: &Pool) -> anyhow::Result<(Duration, usize)> {
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
pub(crate) async fn report_progress(pool: Pool, head: i64, started: Instant) {
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
    pub(crate) fn rate(&self) -> f64 {
        self.events as f64 / self.took.as_secs_f64()
    }

    pub(crate) fn live_rate(&self) -> f64 {
        self.live_events as f64 / self.live_took.as_secs_f64()
    }

    pub(crate) fn print(&self) {
        println!();
        println!("| run | events | seconds | events/s |");
        println!("|---|---:|---:|---:|");
        println!(
            "| `keyledger projections rebuild`, all read models | {} | {:.1} | {:.0} |",
            self.events,
            self.took.as_secs_f64(),
            self.rate()
        );
        // A build that rebuilt the models one after another reported each one's end; one pass
        // over the log reports them all at its end, and a row per model would say nothing.
        let long = |took: &Duration| took.as_secs_f64() >= 0.05 * self.took.as_secs_f64();
        let one_by_one = self.models.iter().filter(|(_, took)| long(took)).count() > 1;
        for (i, (model, took)) in self.models.iter().enumerate().filter(|_| one_by_one) {
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
