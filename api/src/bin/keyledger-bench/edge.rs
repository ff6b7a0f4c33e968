//! The default run: the edge against a bare 204, proxy mode, both paced, the invalid-key
//! flood, and a restart with every seeded key (the numbered runs of `main.rs`'s description).

use super::*;

pub(crate) async fn edge(a: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database_url(a, dir.path(), "bench.db");
    println!(
        "# Keyledger edge benchmark: {} keys, {} s per run, {} connections, {}",
        a.keys,
        a.duration,
        a.connections,
        keyledger_commands::redact_url(&url)
    );

    let app = Application::build(config(&url)).await?;
    let (edge, state, edge_router) = (app.edge_addr(), app.state().clone(), app.edge_router());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    // The platform: one endpoint with a required scope; keys with scopes, IP rules and limits.
    let ctx = CommandContext::system();
    let upstream_addr = upstream().await?;
    let upstream = format!("http://{upstream_addr}");
    let create = state
        .bus
        .endpoint_command(
            &ctx,
            keyledger_domain::endpoint::route_stream_id(&"/files/{id}".parse()?),
            |at| keyledger_domain::EndpointCommand::Register {
                endpoint_id: uuid::Uuid::new_v4(),
                spec: Box::new(keyledger_domain::endpoint::EndpointSpec {
                    methods: ["GET".parse().unwrap()].into(),
                    path: "/files/{id}".parse().unwrap(),
                    plugin: keyledger_domain::endpoint::PluginName::try_from("Files".to_owned()).unwrap(),
                    description: Default::default(),
                    required_scopes: ["FILES_READ".parse().unwrap()].into(),
                    request_schema: None,
                    response_schema: None,
                    upstream_url: keyledger_domain::endpoint::UpstreamUrl::try_from(upstream.clone()).unwrap(),
                }),
                at,
            },
        )
        .await?;
    state.settle(create.position).await;
    let limits = RateLimits::try_from(RateLimitsInput {
        per_second: Some(1_000_000_000),
        per_minute: Some(1_000_000_000),
        per_hour: Some(1_000_000_000),
        per_day: Some(1_000_000_000),
        burst: None,
    })?;
    let rules = IpRules::new(
        vec![CidrRule::try_from("127.0.0.0/8".to_owned())?],
        vec![CidrRule::try_from("10.9.9.9".to_owned())?],
    )?;
    let seeding = Instant::now();
    let mut keys = Vec::with_capacity(a.keys);
    let mut last = 0;
    for i in 0..a.keys {
        let req = IssueKeyRequest {
            idempotency_key: None,
            tenant: None,
            name: format!("bench {i}").parse()?,
            environment: Environment::Live,
            scopes: ["FILES_READ".parse()?].into(),
            rate_limits: limits,
            ip_rules: rules.clone(),
            expires_at: None,
        };
        let committed = state.bus.issue_key(&ctx, req).await?;
        last = committed.position;
        if let IssueOutcome::Created { secret, .. } = committed.value {
            keys.push(secret.expose().to_owned());
        }
    }
    state.settle(last).await;
    println!("seeded {} keys in {:.1} s", keys.len(), seeding.elapsed().as_secs_f64());
    let key = keys[0].clone();
    let usage = usage_writer(&state, &key, a.usage_records).await;
    let rollups = rollups_alone(&state).await;
    let base = format!("http://{edge}");
    let auth_headers = [
        ("Authorization", format!("Bearer {key}")),
        ("X-Original-Method", "GET".into()),
        ("X-Original-URI", "/files/1".into()),
    ];
    let auth_headers: Vec<(&str, &str)> = auth_headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The forward-auth request without a key: the key-cycling scripts add one per request.
    let forward = [("X-Original-Method", "GET"), ("X-Original-URI", "/files/1")];

    // 0. The checks alone, in-process: the same requests through the edge's router, no sockets.
    // Five alternating rounds of each; the least time of each is its cost (other work on the
    // machine only ever adds to a round).
    let in_process_n = 100_000;
    let (mut ping_wall, mut ping_cpu_in, mut auth_wall, mut auth_cpu_in) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..5 {
        let (wall, cpu) = in_process(&edge_router, "/_keyledger/ping", &auth_headers, in_process_n).await;
        (ping_wall, ping_cpu_in) = (ping_wall.min(wall), ping_cpu_in.min(cpu));
        let (wall, cpu) = in_process(&edge_router, "/auth", &auth_headers, in_process_n).await;
        (auth_wall, auth_cpu_in) = (auth_wall.min(wall), auth_cpu_in.min(cpu));
    }

    // 1. /auth against the bare 204 on the same server, sent the very same request (key and
    // forward-auth headers), so that the difference is what the checks cost and not what wrk
    // spends on three more headers. The two alternate: this VM drifts by ±15 % between runs, so
    // a ratio is taken within each pair and the report gives medians.
    let ping_url = format!("{base}/_keyledger/ping");
    let auth_url = format!("{base}/auth");
    let mut pairs = Vec::with_capacity(a.pairs);
    for _ in 0..a.pairs.max(1) {
        let cpu = cpu_time();
        let ping = wrk(&ping_url, a.connections, a.duration, None, &auth_headers);
        let ping_cpu = per_request(cpu_time() - cpu, &ping, a.duration);
        let cpu = cpu_time();
        let auth = wrk(&auth_url, a.connections, a.duration, None, &auth_headers);
        let auth_cpu = per_request(cpu_time() - cpu, &auth, a.duration);
        assert_eq!(auth.non_2xx, 0, "every /auth answer must be 204");
        pairs.push(Pair {
            ping,
            auth,
            ping_cpu,
            auth_cpu,
        });
    }
    let (ping, auth) = (
        median_run(pairs.iter().map(|p| p.ping)),
        median_run(pairs.iter().map(|p| p.auth)),
    );
    let (ping_cpu, auth_cpu) = (
        median(pairs.iter().map(|p| p.ping_cpu)),
        median(pairs.iter().map(|p| p.auth_cpu)),
    );
    let ratio = median(pairs.iter().map(|p| p.auth.rps / p.ping.rps));
    let p99_added = median(pairs.iter().map(|p| p.auth.p99_ms - p.ping.p99_ms));

    // 1b. Proxy mode: the same key through the edge's reverse proxy and through a bare proxy.
    let bare = bare_proxy(upstream_addr).await?;
    let key_header = [("Authorization", format!("Bearer {key}"))];
    let key_header: Vec<(&str, &str)> = key_header.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let proxied = proxy_pairs(
        a,
        &format!("http://{bare}/files/1"),
        &format!("{base}/files/1"),
        &key_header,
    );

    // Latency at equal load: both paced to the same request rate, well below what either
    // sustains, so that p99 shows what the checks add to a request rather than queueing.
    // A connection's rate is 1 / (delay + latency): a delay of several milliseconds keeps the
    // two runs' latencies from setting different rates.
    let paced_connections = 64;
    let delay_ms = (paced_connections * 1000 / a.paced_rate.max(1)).max(1) as u64;
    let ping_script = wrk_script(
        dir.path(),
        "paced-ping",
        "/_keyledger/ping",
        &auth_headers,
        &[],
        delay_ms,
    )?;
    let auth_script = wrk_script(dir.path(), "paced-auth", "/auth", &auth_headers, &[], delay_ms)?;
    let cpu = cpu_time();
    let paced_ping = wrk(&ping_url, paced_connections, a.duration, Some(&ping_script), &[]);
    let paced_ping_cpu = per_request(cpu_time() - cpu, &paced_ping, a.duration);
    let cpu = cpu_time();
    let paced_auth = wrk(&auth_url, paced_connections, a.duration, Some(&auth_script), &[]);
    let paced_auth_cpu = per_request(cpu_time() - cpu, &paced_auth, a.duration);
    assert_eq!(paced_auth.non_2xx, 0, "every paced /auth answer must be 204");

    // 2. Invalid keys. The flood is made of the keys a naive edge would spend PBKDF2 on: well-formed
    // (right checksum) with real lookup ids and wrong secrets, and unknown lookup ids. First alone,
    // to measure what one invalid request costs the server; then at a fixed rate beside the valid
    // traffic of run 1.
    let flood_keys = flood_keys(&keys);
    let cpu = cpu_time();
    let flood_alone = wrk(
        &format!("{base}/auth"),
        8,
        a.duration,
        Some(&wrk_script(dir.path(), "flood", "/auth", &forward, &flood_keys, 0)?),
        &[],
    );
    let flood_cpu = per_request(cpu_time() - cpu, &flood_alone, a.duration);
    assert!(
        flood_alone.non_2xx as f64 >= flood_alone.rps * a.duration as f64 * 0.9,
        "the invalid keys must be refused"
    );
    // The valid traffic without the flood, right before and right after the run beside it: the
    // runs at the start of the benchmark are served from a smaller database (every run adds its
    // usage), so the ratio compares runs of the same moment.
    let valid = || {
        wrk(
            &format!("{base}/auth"),
            a.connections,
            a.duration.saturating_sub(1).max(1),
            None,
            &auth_headers,
        )
    };
    let before_flood = valid();
    // The flood's own client (flood.rs): a second wrk on core 1 took it from the valid traffic's.
    let flood_rate = a.flood_rate;
    let flood = flood::beside(edge, &forward, &flood_keys, flood_rate, a.duration);
    std::thread::sleep(Duration::from_millis(200));
    let (cpu, wall) = (cpu_time(), Instant::now());
    let during = valid();
    let (during_cpu, during_wall) = (cpu_time() - cpu, wall.elapsed().as_secs_f64());
    let (flood, flood_client_cpu) = flood.join().expect("flood run")?;
    // The flood's client is a thread of this process: its time is not the server's. (It ran a
    // second longer than the valid run: its share of the valid run is taken out.)
    let during_cpu =
        during_cpu.as_secs_f64() - flood_client_cpu.as_secs_f64() * during_wall / (a.duration as f64).max(1.0);
    anyhow::ensure!(flood.non_2xx == flood.requests, "every flood request must be refused");
    let after_flood = valid();
    let without_flood = (before_flood.rps + after_flood.rps) / 2.0;

    // 3. Restart with every key; serve them all at once.
    let _ = stop.send(());
    server.await??;
    let restarting = Instant::now();
    let app = Application::build(config(&url)).await?;
    let ready = restarting.elapsed();
    let (edge, state) = (app.edge_addr(), app.state().clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let script = wrk_script(dir.path(), "restart", "/auth", &forward, &keys, 0)?;
    let before = pbkdf2_count(&state.metrics.render());
    let after_restart = wrk(&format!("http://{edge}/auth"), a.connections, 5, Some(&script), &[]);
    let pbkdf2 = pbkdf2_count(&state.metrics.render()) - before;
    assert_eq!(after_restart.non_2xx, 0, "every seeded key must pass after the restart");
    let _ = stop.send(());
    server.await??;

    println!();
    println!("| run | requests/s | p50 | p99 | server CPU per request |");
    println!("|---|---:|---:|---:|---:|");
    for (i, p) in pairs.iter().enumerate() {
        println!(
            "| pair {}: bare 204 / `/auth` | {:.0} / {:.0} | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.1} / {:.1} µs |",
            i + 1,
            p.ping.rps,
            p.auth.rps,
            p.ping.p50_ms,
            p.auth.p50_ms,
            p.ping.p99_ms,
            p.auth.p99_ms,
            p.ping_cpu,
            p.auth_cpu
        );
    }
    let n = pairs.len();
    row(
        &format!("bare 204 `/_keyledger/ping`, median of {n}"),
        &ping,
        Some(ping_cpu),
    );
    row(
        &format!("`/auth`, valid key, full rule set, median of {n}"),
        &auth,
        Some(auth_cpu),
    );
    report_proxy(&proxied);
    row(
        &format!("bare 204, paced ({paced_connections} connections, {delay_ms} ms apart)"),
        &paced_ping,
        Some(paced_ping_cpu),
    );
    row("`/auth`, paced the same", &paced_auth, Some(paced_auth_cpu));
    row("`/auth` valid, right before the flood", &before_flood, None);
    row("`/auth` valid, during the invalid-key flood", &during, None);
    row("`/auth` valid, right after the flood", &after_flood, None);
    row(
        &format!("the flood beside it (paced at {flood_rate}/s from core 1, all refused)"),
        &flood,
        None,
    );
    row(
        "invalid keys alone (8 connections, all refused)",
        &flood_alone,
        Some(flood_cpu),
    );
    row(
        &format!("`/auth` over all {} keys right after a restart", keys.len()),
        &after_restart,
        None,
    );
    println!(
        "| in-process, no sockets: bare 204 / `/auth`, least of 5 rounds of {in_process_n} on one task | | {ping_wall:.2} / {auth_wall:.2} µs | | {ping_cpu_in:.2} / {auth_cpu_in:.2} µs |"
    );
    println!(
        "| usage writer alone, {} records | {:.0} records/s | {:.2} µs CPU per record | |",
        a.usage_records, usage.0, usage.1
    );
    println!(
        "| usage rollups alone, every one of the {} stored records folded again | {:.0} records/s | {:.2} µs of the core per record | |",
        rollups.0,
        rollups.1,
        1e6 / rollups.1
    );
    println!();
    println!(
        "throughput ratio /auth ÷ ping: {ratio:.2}, median of {} pairs (target ≥ 0.85)",
        pairs.len()
    );
    println!(
        "server CPU per request, bare ÷ /auth: {:.2} (the ratio when the server alone is the bottleneck)",
        ping_cpu / auth_cpu
    );
    proxy_ratio_line(&proxied);
    println!("p99 added by the checks at saturation: {p99_added:.3} ms, median of the pairs (target ≤ 0.5 ms)");
    println!(
        "p99 added by the checks at equal load ({:.0} and {:.0} requests/s): {:.3} ms (target ≤ 0.5 ms)",
        paced_ping.rps,
        paced_auth.rps,
        paced_auth.p99_ms - paced_ping.p99_ms
    );
    println!(
        "valid throughput during a flood of {:.0} invalid requests/s ÷ without (the mean of the runs right before and after): {:.2} (target ≥ 0.9; ÷ the `/auth` median at the start: {:.2})",
        flood.rps,
        during.rps / without_flood,
        during.rps / auth.rps
    );
    // Below 100 %, the load generators' core was the limit, not the server's.
    println!(
        "during the flood the server used {:.0} % of its core, {:.1} µs a request (valid and invalid)",
        during_cpu / during_wall * 100.0,
        during_cpu * 1e6 / ((during.rps + flood.rps) * during_wall).max(1.0)
    );
    println!(
        "server CPU per invalid request ÷ per valid one: {:.2}",
        flood_cpu / auth_cpu
    );
    // Every request costs the core something: at their cost alone (measured at saturation,
    // where it is least), the flood's requests leave the valid traffic at most this share.
    println!(
        "the flood at its cost alone ({flood_cpu:.1} µs a request) takes {:.0} % of the server's core: the most a ratio can be is {:.2}",
        flood.rps * flood_cpu / 1e4,
        1.0 - flood.rps * flood_cpu / 1e6
    );
    println!(
        "restart with {} keys: serving after {:.2} s; PBKDF2 checks while serving them all: {pbkdf2} (target 0)",
        keys.len(),
        ready.as_secs_f64()
    );
    if let Some(load) = pin::busiest_load() {
        println!(
            "wrk's CPU, busiest run: {:.0} % of its core ({})",
            load * 100.0,
            if load < 0.9 {
                "the load generator was not the limit"
            } else {
                "the load generator may have been the limit"
            }
        );
    }
    Ok(())
}
