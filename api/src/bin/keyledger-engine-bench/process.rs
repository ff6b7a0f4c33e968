//! Starting and stopping `keyledger` processes and reading what they print.

use super::*;

/// One line a child printed, stamped when it was read (so timings do not depend on when the
/// bench gets around to looking).
pub(crate) struct Line {
    pub(crate) at: Instant,
    pub(crate) text: String,
}

/// A child process whose output is drained by two threads into a channel (a full pipe would stall
/// it). However the bench leaves the scope, the child is stopped: SIGTERM, then SIGKILL.
pub(crate) struct Process {
    pub(crate) child: Child,
    pub(crate) lines: mpsc::Receiver<Line>,
    pub(crate) tail: Arc<Mutex<VecDeque<String>>>,
}

pub(crate) enum Next {
    Line(Line),
    /// Both output streams are closed: the process has ended.
    Closed,
    Timeout,
}

impl Process {
    pub(crate) fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("cannot start {cmd:?}"))?;
        let (tx, lines) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        pump(stdout, tx.clone(), tail.clone());
        pump(stderr, tx, tail.clone());
        Ok(Process { child, lines, tail })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line printed, polled so as not to block the runtime's only worker.
    pub(crate) async fn next_line(&self, deadline: Instant) -> Next {
        loop {
            match self.lines.try_recv() {
                Ok(line) => return Next::Line(line),
                Err(mpsc::TryRecvError::Disconnected) => return Next::Closed,
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if Instant::now() >= deadline {
                return Next::Timeout;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The last lines it printed, for error messages.
    pub(crate) fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// The exit status of a process whose output has just closed (it is exiting by itself).
    pub(crate) fn exit_status(&mut self) -> anyhow::Result<ExitStatus> {
        match self.wait_for_exit(Duration::from_secs(5))? {
            Some(status) => Ok(status),
            None => self.terminate(Duration::from_secs(30)),
        }
    }

    /// SIGTERM (the server drains, flushes and stops), then SIGKILL after `grace`.
    pub(crate) fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait().context("cannot wait for a child")? {
            return Ok(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if let Some(status) = self.wait_for_exit(grace)? {
            return Ok(status);
        }
        self.child.kill().context("cannot kill a child")?;
        self.child.wait().context("cannot wait for a killed child")
    }

    pub(crate) fn wait_for_exit(&mut self, within: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().context("cannot wait for a child")? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.terminate(Duration::from_secs(30));
    }
}

/// Copies a child's stream line by line into the channel and the tail, until it closes.
pub(crate) fn pump(stream: impl Read + Send + 'static, tx: mpsc::Sender<Line>, tail: Arc<Mutex<VecDeque<String>>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buf).trim_end().to_owned();
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == 40 {
                    tail.pop_front();
                }
                tail.push_back(text.clone());
            }
            // The receiver is gone once the bench stopped listening: keep draining regardless.
            let _ = tx.send(Line {
                at: Instant::now(),
                text,
            });
        }
    });
}

/// How to run the server binary: which file, on which core, with which bootstrap token.
pub(crate) struct Engine {
    pub(crate) bin: PathBuf,
    pub(crate) cpu: Option<usize>,
    pub(crate) token: String,
    /// The children's working directory: on PostgreSQL the server writes its generated edge
    /// pepper to `./keyledger-data`, which must not land wherever the bench was started.
    pub(crate) cwd: tempfile::TempDir,
}

/// How a server start ended.
pub(crate) enum Start {
    Ready(Server),
    /// It ended before it was ready; the last lines it printed.
    Exited(String),
}

impl Engine {
    pub(crate) fn new(bin: PathBuf, cpu: Option<usize>) -> anyhow::Result<Self> {
        Ok(Engine {
            bin,
            cpu,
            token: generate_admin_token(),
            cwd: tempfile::tempdir().context("cannot create a temporary directory")?,
        })
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match self.cpu {
            Some(cpu) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpu.to_string()).arg(&self.bin);
                cmd
            }
            None => Command::new(&self.bin),
        };
        cmd.args(args).env("RUST_LOG", "warn").current_dir(self.cwd.path());
        cmd
    }

    /// What `--version` says, and when the binary was built (which build a before/after run used).
    pub(crate) fn version(&self) -> String {
        let version = self
            .command(&["--version"])
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "version unknown".into());
        let built = std::fs::metadata(&self.bin)
            .and_then(|m| m.modified())
            .map(|t| DateTime::<Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|_| "unknown".into());
        format!("{version}, built {built}")
    }

    /// Starts `keyledger serve` and waits for both "listening" lines (printed once its read
    /// models have caught up with the log). Returns how long that took.
    pub(crate) async fn serve(&self, url: &str, patience: Duration) -> anyhow::Result<(Start, Duration)> {
        let started = Instant::now();
        let process = Process::spawn(self.command(&[
            "serve",
            "--database-url",
            url,
            "--admin-addr",
            "127.0.0.1:0",
            "--edge-addr",
            "127.0.0.1:0",
            "--bootstrap-token",
            &self.token,
            "--pbkdf2-iterations",
            "1000",
        ]))?;
        let deadline = started + patience;
        let (mut admin, mut edge) = (None, None);
        // When it printed its last line: an exit long after its error message is worth knowing.
        let mut last_line = Duration::ZERO;
        while admin.is_none() || edge.is_none() {
            match process.next_line(deadline).await {
                Next::Line(line) => {
                    last_line = line.at.duration_since(started);
                    if let Some(addr) = line.text.strip_prefix("admin listening on ") {
                        admin = Some(addr.trim().to_owned());
                    } else if let Some(addr) = line.text.strip_prefix("edge listening on ") {
                        edge = Some(addr.trim().to_owned());
                    }
                }
                Next::Closed => {
                    let mut process = process;
                    let status = process.exit_status()?;
                    let ended = started.elapsed();
                    let report = format!(
                        "{status} after {:.1} s, its last line printed at {:.1} s\n{}",
                        ended.as_secs_f64(),
                        last_line.as_secs_f64(),
                        process.tail()
                    );
                    return Ok((Start::Exited(report), ended));
                }
                Next::Timeout => bail!(
                    "the server was not ready within {} s; its last lines:\n{}",
                    patience.as_secs(),
                    process.tail()
                ),
            }
        }
        let server = Server {
            process,
            admin: admin.unwrap_or_default(),
        };
        Ok((Start::Ready(server), started.elapsed()))
    }

    /// A server that must come up (phases 1 and 2).
    pub(crate) async fn serve_ready(&self, url: &str, patience: Duration) -> anyhow::Result<(Server, Duration)> {
        match self.serve(url, patience).await? {
            (Start::Ready(server), took) => Ok((server, took)),
            (Start::Exited(tail), _) => bail!("the server stopped before it was ready:\n{tail}"),
        }
    }

    /// Runs a CLI command to its end; returns its output lines with when each was printed.
    pub(crate) async fn cli(
        &self,
        args: &[&str],
        patience: Duration,
    ) -> anyhow::Result<(Duration, Vec<(Duration, String)>)> {
        let started = Instant::now();
        let mut process = Process::spawn(self.command(args))?;
        let deadline = started + patience;
        let mut lines = Vec::new();
        loop {
            match process.next_line(deadline).await {
                Next::Line(line) => {
                    let at = line.at.duration_since(started);
                    println!("  ({:.1} s) {}", at.as_secs_f64(), line.text);
                    lines.push((at, line.text));
                }
                Next::Closed => break,
                Next::Timeout => bail!(
                    "`keyledger {}` did not finish within {} s; its last lines:\n{}",
                    args.join(" "),
                    patience.as_secs(),
                    process.tail()
                ),
            }
        }
        let status = process.exit_status()?;
        let took = started.elapsed();
        if !status.success() {
            bail!("`keyledger {}` failed ({status}):\n{}", args.join(" "), process.tail());
        }
        Ok((took, lines))
    }
}

/// A running `keyledger serve`.
pub(crate) struct Server {
    pub(crate) process: Process,
    /// `http://127.0.0.1:PORT`
    pub(crate) admin: String,
}

impl Server {
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let status = self.process.terminate(Duration::from_secs(30))?;
        // SIGTERM is a clean stop; 143 (killed by it) would mean the handler was missing.
        if !status.success() {
            println!("(the server ended with {status} on SIGTERM)");
        }
        Ok(())
    }
}
