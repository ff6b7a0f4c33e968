//! Phase 1: unloaded command latency, with a read-your-writes check after each command.

use super::*;

pub(crate) struct Latency {
    pub(crate) rounds: usize,
    pub(crate) patch: Quantiles,
    pub(crate) get: Quantiles,
    /// GETs right after a PATCH that did not show its change yet.
    pub(crate) stale: usize,
    /// PATCHes that were not 200 or did not show the new value.
    pub(crate) failed: usize,
}

pub(crate) async fn latency_phase(api: &Api, rounds: usize) -> anyhow::Result<Latency> {
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
