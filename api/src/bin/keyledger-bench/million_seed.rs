//! Seeding a key set for `--million` through the real command bus, once: a set's directory
//! (or PostgreSQL database) is reused by later runs, since a million keys take minutes.

use super::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One seeded set: where its store is and the plaintext of every key, in issue order.
pub(crate) struct KeySet {
    pub(crate) n: usize,
    pub(crate) url: String,
    /// The set's own directory: its keys file, and the spool and log of its server.
    pub(crate) dir: PathBuf,
    pub(crate) keys: Vec<String>,
}

/// How a set's keys are issued.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plans {
    /// Every key with the same scopes, limits and IP rules (a handful of plans: one here).
    Shared,
    /// Every key with a rate limit of its own, so no two keys share their settings.
    Unique,
}

/// The set of `n` keys under `root` (seeded now unless its keys file is there): on SQLite a
/// database in its directory, on PostgreSQL a database named after `base`'s with a suffix.
pub(crate) async fn key_set(
    root: &Path,
    base: Option<&str>,
    n: usize,
    plans: Plans,
    seeders: usize,
) -> anyhow::Result<KeySet> {
    let name = match plans {
        Plans::Shared => format!("keys-{n}"),
        Plans::Unique => format!("keys-{n}-unique"),
    };
    let dir = root.join(&name);
    let url = match base {
        Some(base) => postgres_database(base, &name.replace('-', "_")).await?,
        None => format!("sqlite://{}", dir.join("keyledger.db").display()),
    };
    let keys_file = dir.join("keys.txt");
    if let Ok(text) = std::fs::read_to_string(&keys_file) {
        let keys: Vec<String> = text.lines().map(str::to_owned).collect();
        anyhow::ensure!(
            keys.len() == n,
            "{} holds {} keys, not {n}",
            keys_file.display(),
            keys.len()
        );
        println!("reusing the {n} keys seeded in {}", dir.display());
        return Ok(KeySet { n, url, dir, keys });
    }
    // A set whose keys file is missing was not seeded to the end: start it again.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    if base.is_some() {
        reset_postgres(&url).await?;
    }
    let keys = seed(&url, n, plans, seeders).await?;
    let partial = dir.join("keys.txt.partial");
    std::fs::write(&partial, keys.join("\n"))?;
    std::fs::rename(&partial, &keys_file)?;
    Ok(KeySet { n, url, dir, keys })
}

/// `base` with its database name replaced by `name`, the database made if missing.
async fn postgres_database(base: &str, name: &str) -> anyhow::Result<String> {
    use sqlx::Connection as _;
    let (server, query) = match base.split_once('?') {
        Some((server, query)) => (server, format!("?{query}")),
        None => (base, String::new()),
    };
    let server = server.rsplit_once('/').map_or(server, |(s, _)| s);
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres{query}")).await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await?;
    }
    Ok(format!("{server}/{name}{query}"))
}

/// Empties a database a seed was interrupted in.
async fn reset_postgres(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query("DROP SCHEMA public CASCADE").execute(&mut conn).await?;
    sqlx::query("CREATE SCHEMA public").execute(&mut conn).await?;
    Ok(())
}

/// Issues `n` keys through a node's command bus, `seeders` at a time, on both cores, and waits
/// until its read models hold them all.
async fn seed(url: &str, n: usize, plans: Plans, seeders: usize) -> anyhow::Result<Vec<String>> {
    // Seeding is not measured: let it use the whole machine.
    let _ = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", "0-1", &std::process::id().to_string()])
        .output();
    let mut config = config(url);
    // The edge never runs PBKDF2 for a key whose verifier issuance stored (what this mode
    // checks): one iteration keeps a million issues from costing an hour of hashing.
    config.serve.pbkdf2_iterations = 1;
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let ctx = CommandContext::system();
    let path = "/files/{id}".parse()?;
    let registered = state
        .bus
        .endpoint_command(&ctx, keyledger_domain::endpoint::route_stream_id(&path), |at| {
            keyledger_domain::EndpointCommand::Register {
                endpoint_id: uuid::Uuid::new_v4(),
                spec: Box::new(keyledger_domain::endpoint::EndpointSpec {
                    methods: ["GET".parse().expect("a method")].into(),
                    path,
                    plugin: "Files".to_owned().try_into().expect("a plugin name"),
                    description: Default::default(),
                    required_scopes: ["FILES_READ".parse().expect("a scope")].into(),
                    request_schema: None,
                    response_schema: None,
                    upstream_url: "http://127.0.0.1:9".to_owned().try_into().expect("a URL"),
                }),
                at,
            }
        })
        .await?;
    state.settle(registered.position).await;
    let rules = IpRules::new(
        vec![CidrRule::try_from("127.0.0.0/8".to_owned())?],
        vec![CidrRule::try_from("10.9.9.9".to_owned())?],
    )?;
    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(seeders);
    for _ in 0..seeders.max(1) {
        let (state, ctx, rules, next) = (state.clone(), ctx.clone(), rules.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut issued: Vec<(usize, String)> = Vec::new();
            let mut last = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>((issued, last));
                }
                // Unique plans: a per-day limit of its own for every key.
                let per_day = match plans {
                    Plans::Shared => 1_000_000_000,
                    Plans::Unique => 1_000_000_000 - i as u64,
                };
                let req = IssueKeyRequest {
                    idempotency_key: None,
                    tenant: None,
                    name: format!("million {i}").parse()?,
                    environment: Environment::Live,
                    scopes: ["FILES_READ".parse()?].into(),
                    rate_limits: RateLimits::try_from(RateLimitsInput {
                        per_second: Some(1_000_000_000),
                        per_minute: Some(1_000_000_000),
                        per_hour: Some(1_000_000_000),
                        per_day: Some(per_day),
                        burst: None,
                    })?,
                    ip_rules: rules.clone(),
                    expires_at: None,
                };
                let committed = state.bus.issue_key(&ctx, req).await?;
                last = last.max(committed.position);
                if let IssueOutcome::Created { secret, .. } = committed.value {
                    issued.push((i, secret.expose().to_owned()));
                }
                if i > 0 && i % (n / 10).max(1) == 0 {
                    println!("  seeded {i} of {n} keys in {:.0} s", began.elapsed().as_secs_f64());
                }
            }
        }));
    }
    let mut keys = vec![String::new(); n];
    let mut last = 0;
    for task in tasks {
        let (issued, at) = task.await??;
        last = last.max(at);
        for (i, key) in issued {
            keys[i] = key;
        }
    }
    // The read models (the snapshot a restarted edge loads) include every key before it stops.
    while state.catchup.wait_for(last, Duration::from_secs(60)).await.is_err() {
        println!("  waiting for the read models to take in the last keys");
    }
    println!(
        "seeded {n} keys in {:.0} s ({:.0} keys/s)",
        began.elapsed().as_secs_f64(),
        n as f64 / began.elapsed().as_secs_f64()
    );
    let _ = stop.send(());
    server.await??;
    anyhow::ensure!(keys.iter().all(|k| !k.is_empty()), "every key was issued");
    Ok(keys)
}
