//! The closing summary.

use super::*;

pub(crate) struct Summary {
    pub(crate) date: DateTime<Utc>,
    pub(crate) backend: String,
    pub(crate) version: String,
    pub(crate) start_empty: Duration,
    pub(crate) latency: Latency,
    pub(crate) throughput: Throughput,
    pub(crate) rebuild: Option<Rebuild>,
    pub(crate) source: (PathBuf, String),
}

/// The source tree this bench was built from, and its HEAD commit now (read only).
pub(crate) fn source_commit() -> (PathBuf, String) {
    let api = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = api.parent().unwrap_or(api).to_path_buf();
    let commit = Command::new("git")
        .arg("-C")
        .arg(&source)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    (source, commit)
}

/// The 1, 5 and 15 minute load averages: on a shared two-core machine, whether something else
/// ran beside the bench (the bench and the server alone account for about 2).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

impl Summary {
    pub(crate) fn print(&self, args: &Args, engine: &Engine, pin: Option<Pinning>) {
        let (source, commit) = &self.source;
        let command: Vec<String> = std::env::args().collect();
        let (l, t) = (&self.latency, &self.throughput);
        println!("\n## Summary");
        println!(
            "date: {} (load average at the end: {})",
            self.date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            load_average()
        );
        println!("backend: {}", self.backend);
        println!(
            "bench built from: {} (its HEAD when the run started: {commit})",
            source.display()
        );
        println!("server binary: {} ({})", engine.bin.display(), self.version);
        println!("command: {}", command.join(" "));
        match pin {
            Some(p) => println!("cores: server {}, bench {}", p.server, p.client),
            None => println!("cores: not pinned"),
        }
        println!(
            "server ready on an empty store: {:.2} s",
            self.start_empty.as_secs_f64()
        );
        println!(
            "command latency, unloaded ({} rounds): median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
            l.rounds, l.patch.p50, l.patch.p90, l.patch.p99
        );
        println!("GET right after, median: {:.2} ms", l.get.p50);
        println!("read-your-writes violations: {} of {}", l.stale, l.rounds);
        if l.failed > 0 {
            println!("failed PATCHes in the latency run: {}", l.failed);
        }
        println!(
            "raw commits/s, median of {}: {:.0} ({} clients)",
            t.runs.len(),
            t.raw,
            args.clients
        );
        println!("commands/s, median of {}: {:.0}", t.runs.len(), t.commands);
        println!(
            "commands ÷ raw: {:.3} (medians), {:.3} (median of the pairs)",
            t.ratio_of_medians(),
            t.median_of_ratios()
        );
        match &self.rebuild {
            Some(r) => {
                println!(
                    "projections rebuild: {} events in {:.1} s = {:.0} events/s",
                    r.events,
                    r.took.as_secs_f64(),
                    r.rate()
                );
                println!(
                    "live catch-up (serve until /readyz 200): {} events in {:.1} s = {:.0} events/s, {} restarts",
                    r.live_events,
                    r.live_took.as_secs_f64(),
                    r.live_rate(),
                    r.restarts
                );
            }
            None => println!("rebuild: skipped"),
        }
    }
}
