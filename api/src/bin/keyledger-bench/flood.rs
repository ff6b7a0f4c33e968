//! The invalid-key flood's own client. wrk paces a connection only with a Lua `delay` per request,
//! and a second wrk running Lua on core 1 took that core from the wrk measuring the valid traffic
//! beside it (already at 94 % of it alone): the flood ratio measured the load generators' core,
//! not the server. This client is one thread on core 1 with a handful of keep-alive connections,
//! requests written in advance, and a fixed schedule: a few µs of that core a request.

use super::wrk::Wrk;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Connections the flood keeps open; each round sends one request on each.
const CONNECTIONS: usize = 8;

/// [`paced`] `/auth` on a thread of its own, from the load generator's core; with what it
/// measured, the CPU time the thread took (to be taken out of this process's, the server's).
pub(crate) fn beside(
    addr: SocketAddr,
    headers: &[(&'static str, &'static str)],
    keys: &[String],
    rate: usize,
    seconds: u64,
) -> std::thread::JoinHandle<std::io::Result<(Wrk, Duration)>> {
    let (headers, keys) = (headers.to_vec(), keys.to_vec());
    std::thread::spawn(move || {
        if let Some(core) = super::pin::load_core() {
            pin_this_thread(core);
        }
        let started = super::wrk::thread_cpu_time();
        let run = paced(addr, &headers, &keys, rate, seconds)?;
        Ok((run, super::wrk::thread_cpu_time() - started))
    })
}

/// Sends `GET /auth` with `headers` and the next of `keys` (`Authorization: Bearer`) at `rate`
/// requests a second for `seconds`; returns what it measured in wrk's terms (requests/s reached,
/// latency p50 and p99, answers other than 2xx). A round's answers are read in turn, so each
/// latency counts from its round's start.
fn paced(
    addr: SocketAddr,
    headers: &[(&str, &str)],
    keys: &[String],
    rate: usize,
    seconds: u64,
) -> std::io::Result<Wrk> {
    let requests: Vec<Vec<u8>> = keys
        .iter()
        .map(|key| {
            let mut r = format!("GET /auth HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n");
            for (k, v) in headers {
                r.push_str(&format!("{k}: {v}\r\n"));
            }
            r.push_str("\r\n");
            r.into_bytes()
        })
        .collect();
    let mut connections = (0..CONNECTIONS)
        .map(|_| {
            let c = TcpStream::connect(addr)?;
            c.set_nodelay(true)?;
            Ok(c)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let round = Duration::from_secs_f64(CONNECTIONS as f64 / rate.max(1) as f64);
    let (started, until) = (Instant::now(), Instant::now() + Duration::from_secs(seconds));
    let mut latencies_us: Vec<u64> = Vec::with_capacity(rate * seconds as usize);
    let (mut next, mut sent, mut non_2xx) = (started, 0usize, 0u64);
    let mut buffer = vec![0u8; 16 * 1024];
    while next < until {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let at = Instant::now();
        for c in connections.iter_mut() {
            c.write_all(&requests[sent % requests.len()])?;
            sent += 1;
        }
        for c in connections.iter_mut() {
            let status = read_answer(c, &mut buffer)?;
            if !(200..300).contains(&status) {
                non_2xx += 1;
            }
            latencies_us.push(at.elapsed().as_micros() as u64);
        }
        // A fixed schedule: a late round is not made up with a burst of several.
        next = (next + round).max(at);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let at = |q: f64| {
        latencies_us
            .get(((latencies_us.len() as f64 * q) as usize).min(latencies_us.len().saturating_sub(1)))
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    };
    Ok(Wrk {
        rps: latencies_us.len() as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        non_2xx,
        requests: latencies_us.len() as u64,
    })
}

/// Reads one HTTP/1.1 answer with a Content-Length (the edge's every answer has one, or none
/// for a 204) and returns its status.
fn read_answer(c: &mut TcpStream, buffer: &mut [u8]) -> std::io::Result<u16> {
    let mut filled = 0;
    loop {
        let n = c.read(&mut buffer[filled..])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the edge closed",
            ));
        }
        filled += n;
        let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            if filled == buffer.len() {
                return Err(std::io::Error::other("an answer's head longer than the buffer"));
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("an answer without a status"))?;
        let length: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body_read = filled - (end + 4);
        while body_read < length {
            let want = (length - body_read).min(buffer.len());
            let n = c.read(&mut buffer[..want])?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the edge closed",
                ));
            }
            body_read += n;
        }
        return Ok(status);
    }
}

/// Moves the calling thread (not the process, whose threads serve on core 0) to `core`.
fn pin_this_thread(core: usize) {
    // /proc/thread-self is /proc/<pid>/task/<tid>: taskset -p on a thread id moves that thread.
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned));
    if let Some(tid) = tid {
        let _ = std::process::Command::new("taskset")
            .args(["-p", "-c", &core.to_string(), &tid])
            .output();
    }
}
