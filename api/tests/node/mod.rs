//! A real `keyledger serve` process for the tests that kill one: its store, its command line,
//! its printed addresses.

#[path = "../../../tests/support/postgres.rs"]
mod postgres;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_keyledger");
pub const TOKEN: &str = "kla_crash_test_bootstrap_token_0123456789";

/// A store a test kills servers over: SQLite in the server's default data directory under
/// `dir`, or a fresh PostgreSQL database.
pub struct Store {
    pub dir: tempfile::TempDir,
    pub postgres: Option<(String, String)>,
}

impl Store {
    pub fn sqlite() -> Store {
        Store {
            dir: tempfile::tempdir().unwrap(),
            postgres: None,
        }
    }

    /// `None` (with a printed reason) when PostgreSQL is unreachable and not required.
    pub async fn postgres() -> Option<Store> {
        Some(Store {
            dir: tempfile::tempdir().unwrap(),
            postgres: Some(postgres::create_database().await?),
        })
    }

    pub fn url(&self) -> String {
        match &self.postgres {
            Some((url, _)) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.dir.path().join("keyledger-data/keyledger.db").display()
            ),
        }
    }

    pub async fn drop(self) {
        if let Some((_, name)) = &self.postgres {
            postgres::drop_database(name).await;
        }
    }
}

pub fn keyledger(dir: &Store) -> Command {
    let mut cmd = Command::new(BIN);
    match &dir.postgres {
        Some((url, _)) => cmd.env("KEYLEDGER_DATABASE_URL", url),
        None => cmd.env_remove("KEYLEDGER_DATABASE_URL"),
    };
    cmd.current_dir(dir.dir.path())
        .env("KEYLEDGER_BOOTSTRAP_TOKEN", TOKEN)
        .env("KEYLEDGER_PBKDF2_ITERATIONS", "1000")
        .env("RUST_LOG", "warn");
    cmd
}

/// `keyledger serve` on the store, with `env` added to its environment.
pub fn spawn_serve(dir: &Store, env: &[(&str, &str)]) -> Child {
    keyledger(dir)
        .args(["serve", "--admin-addr", "127.0.0.1:0", "--edge-addr", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn keyledger serve")
}

/// The admin and edge addresses the server prints once it listens (it catches its read models
/// up first); a server that never gets there is killed, and the test fails instead of hanging.
pub fn listening(child: &mut Child) -> (String, String) {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut admin = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("admin listening on http://") {
                admin = Some(addr.to_owned());
            } else if let Some(edge) = line.strip_prefix("edge listening on http://") {
                let _ = tx.send((admin.take().unwrap_or_default(), edge.to_owned()));
                return;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(addrs) => addrs,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not catch up and listen within 120 s");
        }
    }
}

pub fn stop(mut child: Child, signal: &str) {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    child.wait().expect("wait");
}

pub async fn pool(dir: &Store) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(&dir.url())
        .await
        .unwrap()
}
