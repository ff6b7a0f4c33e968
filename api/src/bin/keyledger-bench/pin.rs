//! With two cores or more, this process (the server under test, every thread of it) runs on
//! core 0 and wrk on core 1: on shared cores the load generator stole from whichever server it
//! measured, and the ratio moved with the host (README: Benchmarks). wrk's own CPU use is kept,
//! to show it was not the limit.

use std::process::Command;
use std::sync::{Mutex, OnceLock};

static LOAD_CORE: OnceLock<Option<usize>> = OnceLock::new();
static LOAD_CPU: Mutex<Vec<f64>> = Mutex::new(Vec::new());

/// Pins this process to core 0 when there are two cores or more, and says what it did.
pub(crate) fn pin() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pid = std::process::id().to_string();
    let pinned = cores >= 2
        && Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &pid])
            .output()
            .is_ok_and(|o| o.status.success());
    let _ = LOAD_CORE.set(pinned.then_some(1));
    if pinned {
        println!("# pinned: the server (this process, all its threads) on core 0, wrk on core 1");
    } else {
        println!("# not pinned ({cores} core(s), or taskset missing): the server and wrk share the cores");
    }
}

/// Moves this process (every thread) to the load generator's core, leaving core 0 to a server
/// it started there; says whether it could.
pub(crate) fn move_to_load_core() -> bool {
    let Some(core) = load_core() else {
        return false;
    };
    // `taskset -a` fails when one of the threads it walks ends meanwhile (a blocking-pool
    // thread of the seeding, let go after its idle time): tried again.
    (0..5).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Command::new("taskset")
            .args(["-a", "-p", "-c", &core.to_string(), &std::process::id().to_string()])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The load generator's core, when pinned.
pub(crate) fn load_core() -> Option<usize> {
    LOAD_CORE.get().copied().flatten()
}

/// The command that runs wrk: on its own core when pinned.
pub(crate) fn wrk_command() -> Command {
    match load_core() {
        Some(core) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &core.to_string(), "wrk"]);
            cmd
        }
        None => Command::new("wrk"),
    }
}

/// CPU time of this process's finished children (wrk), in seconds: stat(5)'s cutime + cstime.
pub(crate) fn children_cpu() -> f64 {
    super::wrk::self_stat_ticks(&[13, 14]) as f64 / 100.0
}

/// Keeps the share of its core one wrk run used.
pub(crate) fn record_load(cpu_seconds: f64, seconds: u64) {
    if let Ok(mut runs) = LOAD_CPU.lock() {
        runs.push(cpu_seconds / seconds.max(1) as f64);
    }
}

/// The busiest wrk run's share of its core.
pub(crate) fn busiest_load() -> Option<f64> {
    LOAD_CPU.lock().ok()?.iter().copied().reduce(f64::max)
}
