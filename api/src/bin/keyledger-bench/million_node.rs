//! A `keyledger serve` child process for `--million`, pinned to core 0, and what the benchmark
//! reads of it: when it first answers `/auth`, its resident memory and CPU time from /proc, and
//! its PBKDF2 counter.

use super::ingest::{free_port, TOKEN};
use super::million_seed::KeySet;
use super::*;
use std::process::{Child, Command, Stdio};

/// The forward-auth request every run sends (with a key added per request).
pub(crate) const FORWARD: [(&str, &str); 2] = [("X-Original-Method", "GET"), ("X-Original-URI", "/files/1")];

pub(crate) struct Node {
    child: Child,
    pub(crate) admin: String,
    pub(crate) edge: String,
    /// From spawn to the first `/auth` answered 204.
    pub(crate) serving_after: Duration,
}

impl Node {
    /// Starts a node on `set`'s store on core 0 and waits until its edge accepts the set's
    /// first key.
    pub(crate) async fn start(set: &KeySet) -> anyhow::Result<Node> {
        let exe = std::env::current_exe()?.with_file_name("keyledger");
        anyhow::ensure!(
            exe.exists(),
            "{} (cargo build --release -p keyledger-api --bins)",
            exe.display()
        );
        let (admin, edge) = (free_port()?, free_port()?);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(set.dir.join("server.log"))?;
        let spawned = Instant::now();
        let child = Command::new("taskset")
            .args(["-c", "0"])
            .arg(exe)
            .args(["serve", "--database-url", &set.url])
            .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
            .args(["--edge-addr", &format!("127.0.0.1:{edge}")])
            .args(["--bootstrap-token", TOKEN, "--pbkdf2-iterations", "10000"])
            // The pepper the seeding node stored the verifiers with (setup::config).
            .args(["--edge-pepper", "bench-pepper-0123456789abcdef0123456789abcdef"])
            .arg("--usage-spool-dir")
            .arg(set.dir.join("spool"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let mut node = Node {
            child,
            admin: format!("http://127.0.0.1:{admin}"),
            edge: format!("http://127.0.0.1:{edge}"),
            serving_after: Duration::ZERO,
        };
        let http = reqwest::Client::new();
        loop {
            if node.auth(&http, &set.keys[0]).await == Some(204) {
                node.serving_after = spawned.elapsed();
                return Ok(node);
            }
            anyhow::ensure!(
                spawned.elapsed() < Duration::from_secs(600),
                "the node did not serve within 10 minutes (see {})",
                set.dir.join("server.log").display()
            );
            anyhow::ensure!(node.child.try_wait()?.is_none(), "the node exited (see its server.log)");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The status of `/auth` with `key`, `None` when the edge does not answer (yet).
    pub(crate) async fn auth(&self, http: &reqwest::Client, key: &str) -> Option<u16> {
        let mut request = http.get(format!("{}/auth", self.edge)).bearer_auth(key);
        for (name, value) in FORWARD {
            request = request.header(name, value);
        }
        request.send().await.ok().map(|r| r.status().as_u16())
    }

    /// `VmRSS` or `VmHWM` (its peak) from /proc, in bytes.
    pub(crate) fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// The node's CPU time so far (user + system; stat(5)'s utime and stime, in 1/100 s).
    pub(crate) fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let fields: Vec<u64> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
        Duration::from_millis(ticks * 10)
    }

    /// PBKDF2 checks the edge has run since it started.
    pub(crate) async fn pbkdf2(&self, http: &reqwest::Client) -> anyhow::Result<u64> {
        let text = http.get(format!("{}/metrics", self.admin)).send().await?.text().await?;
        Ok(pbkdf2_count(&text))
    }

    /// Waits until the node is idle (its usage writer and rollups have taken in the last run):
    /// under 2 % of a core over half a second, or a minute at most.
    pub(crate) async fn settle(&self) {
        let began = Instant::now();
        loop {
            let before = self.cpu();
            tokio::time::sleep(Duration::from_millis(500)).await;
            if self.cpu() - before <= Duration::from_millis(10) || began.elapsed() > Duration::from_secs(60) {
                return;
            }
        }
    }

    /// Sends `/auth` once with every key, `concurrency` at a time; every answer must be 204.
    pub(crate) async fn serve_all(&self, keys: &[String], concurrency: usize) -> anyhow::Result<Duration> {
        let began = Instant::now();
        let http = reqwest::Client::new();
        let chunk = keys.len().div_ceil(concurrency.max(1)).max(1);
        let refused = futures::future::join_all(keys.chunks(chunk).map(|part| {
            let http = http.clone();
            async move {
                let mut refused = 0usize;
                for key in part {
                    if self.auth(&http, key).await != Some(204) {
                        refused += 1;
                    }
                }
                refused
            }
        }))
        .await
        .into_iter()
        .sum::<usize>();
        anyhow::ensure!(refused == 0, "{refused} of {} keys were not served", keys.len());
        Ok(began.elapsed())
    }

    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill").args(["-TERM", &self.pid().to_string()]).status()?;
        self.child.wait()?;
        Ok(())
    }
}
