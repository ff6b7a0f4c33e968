//! Driving wrk from a second process and reading its report; the server's CPU per request.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Wrk {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) non_2xx: u64,
    /// Responses wrk read in all.
    pub(crate) requests: u64,
}
pub(crate) fn to_ms(value: &str) -> f64 {
    let (number, unit) = value.split_at(value.find(|c: char| c.is_alphabetic()).unwrap_or(value.len()));
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}
pub(crate) fn parse_wrk(out: &str) -> Wrk {
    let mut w = Wrk {
        rps: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        non_2xx: 0,
        requests: 0,
    };
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            w.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("50%") {
            w.p50_ms = to_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            w.p99_ms = to_ms(v.trim());
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            w.requests = n.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            w.non_2xx = v.trim().parse().unwrap_or(0);
        }
    }
    w
}
pub(crate) fn wrk(
    url: &str,
    connections: usize,
    seconds: u64,
    script: Option<&std::path::Path>,
    headers: &[(&str, &str)],
) -> Wrk {
    let mut cmd = super::pin::wrk_command();
    cmd.args([
        "-t",
        "1",
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
        "--latency",
    ]);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(url);
    let before = super::pin::children_cpu();
    let out = cmd.output().expect("wrk (apt-get install wrk)");
    super::pin::record_load(super::pin::children_cpu() - before, seconds);
    assert!(
        out.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}
/// The server's CPU time per request in µs over a wrk run (its usage writer included).
pub(crate) fn per_request(cpu: Duration, run: &Wrk, seconds: u64) -> f64 {
    cpu.as_secs_f64() * 1e6 / (run.rps * seconds as f64).max(1.0)
}
/// One line of the results table.
pub(crate) fn row(label: &str, run: &Wrk, cpu: Option<f64>) {
    let cpu = cpu.map(|c| format!("{c:.1} µs")).unwrap_or_default();
    println!(
        "| {label} | {:.0} | {:.3} ms | {:.3} ms | {cpu} |",
        run.rps, run.p50_ms, run.p99_ms
    );
}
/// One bare-204 run and the `/auth` run right after it.
pub(crate) struct Pair {
    pub(crate) ping: Wrk,
    pub(crate) auth: Wrk,
    pub(crate) ping_cpu: f64,
    pub(crate) auth_cpu: f64,
}
/// The middle value; of an even count, the mean of the two middle ones (the upper one alone, as
/// this took before, read two rounds' ratios as the better of them).
pub(crate) fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        n => v[n / 2],
    }
}
/// The run with the median throughput.
pub(crate) fn median_run(runs: impl Iterator<Item = Wrk>) -> Wrk {
    let mut v: Vec<Wrk> = runs.collect();
    v.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    v[v.len() / 2]
}
/// A wrk script that sends `GET path` with these headers. With `keys`, each request presents the
/// next key (`Authorization: Bearer`), starting at a random one per connection. Each connection
/// waits `delay_ms` between requests (0: as fast as it can; a fixed rate otherwise).
pub(crate) fn wrk_script(
    dir: &std::path::Path,
    name: &str,
    path: &str,
    headers: &[(&str, &str)],
    keys: &[String],
    delay_ms: u64,
) -> anyhow::Result<std::path::PathBuf> {
    let fixed: Vec<String> = headers.iter().map(|(k, v)| format!("[{k:?}] = {v:?}")).collect();
    let fixed = fixed.join(", ");
    let mut lua = if keys.is_empty() {
        format!(
            r#"local req = wrk.format("GET", {path:?}, {{ {fixed} }})
request = function() return req end
"#
        )
    } else {
        let file = dir.join(format!("{name}.keys"));
        std::fs::write(&file, keys.join("\n"))?;
        format!(
            r#"local keys = {{}}
for line in io.lines({:?}) do keys[#keys + 1] = line end
local i = math.random(#keys)
request = function()
  i = i % #keys + 1
  local headers = {{ {fixed} }}
  headers["Authorization"] = "Bearer " .. keys[i]
  return wrk.format("GET", {path:?}, headers)
end
"#,
            file.display().to_string()
        )
    };
    if delay_ms > 0 {
        lua.push_str(&format!("delay = function() return {delay_ms} end\n"));
    }
    let script = dir.join(format!("{name}.lua"));
    std::fs::write(&script, lua)?;
    Ok(script)
}
/// Fields of this process's /proc/self/stat after the command name (which is in parentheses
/// and may hold spaces): stat(5)'s field n is index n - 3 here.
pub(crate) fn self_stat_ticks(indices: &[usize]) -> u64 {
    stat_ticks("/proc/self/stat", indices)
}

fn stat_ticks(path: &str, indices: &[usize]) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    indices
        .iter()
        .map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum()
}

/// This process's CPU time so far (user + system, stat(5)'s utime and stime). Ticks are 1/100 s.
pub(crate) fn cpu_time() -> Duration {
    Duration::from_millis(self_stat_ticks(&[11, 12]) * 10)
}

/// The calling thread's CPU time so far: a load generator running as a thread of this process
/// (the flood's client) is taken out of the server's.
pub(crate) fn thread_cpu_time() -> Duration {
    Duration::from_millis(stat_ticks("/proc/thread-self/stat", &[11, 12]) * 10)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn a_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median([8.0, 1.0, 4.0, 2.0].into_iter()), 3.0);
        assert_eq!(median([0.83, 0.95].into_iter()), (0.83 + 0.95) / 2.0);
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert!(median(std::iter::empty()).is_nan());
    }
}
