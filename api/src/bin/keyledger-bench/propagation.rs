//! Two nodes on one PostgreSQL: how long a revocation through one takes to reach the other's edge.

use super::*;

/// Two nodes on one PostgreSQL: revoke a key through node A, time until node B's edge refuses it
/// (B's in-memory copy turns it to revoked), over many rounds.
pub(crate) async fn propagation(url: &str, rounds: usize) -> anyhow::Result<()> {
    let node = |_: ()| async { Application::build(config(url)).await };
    let a = node(()).await?;
    let b = node(()).await?;
    let (a_state, b_state) = (a.state().clone(), b.state().clone());
    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let server_a = tokio::spawn(a.run_until_stopped(async {
        let _ = stopped_a.await;
    }));
    let server_b = tokio::spawn(b.run_until_stopped(async {
        let _ = stopped_b.await;
    }));
    let ctx = CommandContext::system();
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let req = IssueKeyRequest {
            idempotency_key: None,
            tenant: None,
            name: format!("propagation {i}").parse()?,
            environment: Environment::Live,
            scopes: Default::default(),
            rate_limits: RateLimits::default(),
            ip_rules: IpRules::default(),
            expires_at: None,
        };
        let issued = a_state.bus.issue_key(&ctx, req).await?;
        let IssueOutcome::Created { key, secret } = issued.value else {
            continue;
        };
        let lookup = secret.lookup_id().as_str().to_owned();
        while b_state.edge.cache.key(&lookup).is_none() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let started = Instant::now();
        a_state.bus.revoke_key(&ctx, key.id, None).await?;
        while b_state
            .edge
            .cache
            .key(&lookup)
            .is_some_and(|k| k.status != keyledger_domain::KeyStatus::Revoked)
        {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "revocation on node A → refused by node B's edge, {} rounds:",
        samples.len()
    );
    println!("| p50 | p90 | p99 | max |");
    println!("|---:|---:|---:|---:|");
    println!(
        "| {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    println!("(target: p99 ≤ 100 ms; the time includes A's commit of the revocation)");
    let _ = stop_a.send(());
    let _ = stop_b.send(());
    server_a.await??;
    server_b.await??;
    Ok(())
}
