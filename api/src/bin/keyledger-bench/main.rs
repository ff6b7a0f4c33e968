//! The edge benchmark (README: "Benchmarks"). Starts a real Keyledger, seeds keys, and drives
//! its edge with wrk from a second process:
//!
//! 0. The same requests through the edge's router in-process, without sockets: what the checks
//!    and the usage record cost on their own.
//! 1. `/auth` with a valid key and the full rule set (scopes, IP rules, rate limits, endpoint
//!    match) against the bare 204 `/_keyledger/ping` on the same server, sent the same request:
//!    requests/s, p99 and server CPU per request, alternating over `--pairs`; then both paced
//!    to one request rate, for the latency the checks add at equal load.
//!    Then proxy mode: `GET /files/1` through the edge's reverse proxy against a bare axum proxy
//!    to the same upstream, alternated the same way.
//! 2. Invalid keys (well-formed, real or unknown lookup ids, wrong secrets): alone, for their CPU
//!    cost per request, then at a fixed rate (`--flood-rate`) beside the valid traffic of run 1.
//! 3. A restart with all seeded keys: time to serve, throughput right away over every key, and
//!    how many PBKDF2 checks that took (the target is none).

mod edge;
mod flood;
mod in_process;
mod ingest;
mod million;
mod million_node;
mod million_seed;
mod pin;
mod propagation;
mod proxy;
mod setup;
mod usage_query;
mod webhooks;
mod wrk;

use in_process::*;
use ingest::*;
use propagation::*;
use proxy::*;
use setup::*;
use usage_query::*;
use webhooks::*;
use wrk::*;

use keyledger_api::config::{DbArgs, ServeArgs};
use keyledger_api::{Application, Config};
use keyledger_commands::bus::{IssueKeyRequest, IssueOutcome};
use keyledger_commands::CommandContext;
use keyledger_domain::ip_rules::{CidrRule, IpRules};
use keyledger_domain::key_format::{Environment, LookupId, PlaintextKey};
use keyledger_domain::rate_limits::{RateLimits, RateLimitsInput};

// The edge makes a few small allocations per request on every core; glibc's allocator spent a
// tenth of the edge's CPU on them (README: Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let a = <Args as clap::Parser>::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    pin::pin();
    // Built once pinned, so the server under test gets one worker per core it may use, as
    // `taskset -c 0 keyledger serve` would: two workers on one core woke each other through the
    // kernel for every grouped usage write (README: Benchmarks). The million mode's servers are
    // child processes, and its seeding uses the whole machine.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if a.million.is_some() {
        runtime.worker_threads(cores);
    }
    runtime.enable_all().build()?.block_on(run(a))
}

async fn run(a: Args) -> anyhow::Result<()> {
    if let Some(url) = &a.propagation {
        return propagation(url, a.rounds).await;
    }
    if let Some(seconds) = a.usage_ingest {
        return usage_ingest(&a, seconds).await;
    }
    if let Some(deliveries) = a.webhooks {
        return webhooks(&a, deliveries).await;
    }
    if let Some(records) = a.usage_query {
        return usage_query(&a, records).await;
    }
    if let Some(keys) = a.million {
        return million::million(&a, keys).await;
    }
    edge::edge(&a).await
}
