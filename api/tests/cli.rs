//! The `keyledger` binary as an operator runs it: flags, environment, printed addresses and
//! tokens, exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keyledger");

fn keyledger(dir: &tempfile::TempDir) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_remove("KEYLEDGER_DATABASE_URL")
        .env_remove("KEYLEDGER_BOOTSTRAP_TOKEN")
        .env("KEYLEDGER_PBKDF2_ITERATIONS", "1000")
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `serve` and reads stdout until the admin address is printed.
fn serve(dir: &tempfile::TempDir, extra: &[&str]) -> (Child, Vec<String>, String) {
    let mut child = keyledger(dir)
        .args(["serve", "--admin-addr", "127.0.0.1:0", "--edge-addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn keyledger serve");
    let mut lines = Vec::new();
    let mut admin = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines.push(line.clone());
            if let Some(addr) = line.strip_prefix("admin listening on http://") {
                admin = Some(addr.to_owned());
            }
            if line.starts_with("edge listening on http://") {
                if let Some(addr) = admin.take() {
                    return (child, lines, addr);
                }
            }
            if Instant::now() > deadline {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve printed no address: {lines:?}");
}

fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "graceful exit on SIGTERM: {exit:?}");
}

#[tokio::test]
async fn serve_prints_its_address_and_a_bootstrap_token_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, lines, addr) = serve(&dir, &[]);
    assert_eq!(lines[0], "bootstrap superuser token (tenant default), shown once:");
    let token = lines[1].trim().to_owned();
    assert!(token.starts_with("kla_"), "{lines:?}");
    assert!(
        dir.path().join("keyledger-data/keyledger.db").exists(),
        "default data directory"
    );

    let client = reqwest::Client::new();
    let keys = client
        .get(format!("http://{addr}/v1/keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 200);
    terminate(child);

    // A second start on the same store prints no token.
    let (child, lines, _) = serve(&dir, &[]);
    assert_eq!(lines.len(), 2, "only the addresses: {lines:?}");
    terminate(child);
}

#[tokio::test]
async fn flags_and_environment_choose_the_database_and_the_bootstrap_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("elsewhere/kl.db").display());
    let mut cmd = keyledger(&dir);
    cmd.env("KEYLEDGER_DATABASE_URL", &url)
        .env("KEYLEDGER_BOOTSTRAP_TOKEN", "kla_scripted_bootstrap_token_123456");
    let mut child = cmd
        .args(["serve", "--admin-addr", "127.0.0.1:0", "--edge-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The token came from configuration: its owner knows it, and it is not printed back.
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "bootstrap superuser token (tenant default) created from the configured one"
    );
    let addr = lines.next().unwrap().unwrap().replace("admin listening on http://", "");
    assert!(lines
        .next()
        .unwrap()
        .unwrap()
        .starts_with("edge listening on http://127.0.0.1:"));
    assert!(dir.path().join("elsewhere/kl.db").exists());
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/v1/keys"))
        .bearer_auth("kla_scripted_bootstrap_token_123456")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    terminate(child);
}

#[test]
fn migrate_rebuild_and_admin_commands_work_on_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = keyledger(&dir).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "migrations applied");

    let out = keyledger(&dir)
        .args([
            "admin",
            "create-token",
            "--name",
            "recovery",
            "--permission",
            "TENANT_ADMIN",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).trim().starts_with("kla_"));
    let dup = keyledger(&dir)
        .args(["admin", "create-token", "--name", "RECOVERY"])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already exists"),
        "{dup:?}"
    );

    let out = keyledger(&dir).args(["projections", "rebuild"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in ["admin_tokens", "key_list", "key_lookup", "audit"] {
        assert!(
            stdout.contains(&format!("{name}: rebuilt up to position 1")),
            "{stdout}"
        );
    }
    let one = keyledger(&dir)
        .args(["projections", "rebuild", "audit"])
        .output()
        .unwrap();
    assert!(one.status.success());
    let rollups = keyledger(&dir)
        .args(["projections", "rebuild", "usage_rollups"])
        .output()
        .unwrap();
    assert!(rollups.status.success(), "{rollups:?}");
    assert!(
        String::from_utf8_lossy(&rollups.stdout).contains("usage_rollups: rebuilt from 0 usage records"),
        "{rollups:?}"
    );

    let unknown = keyledger(&dir)
        .args(["projections", "rebuild", "nope"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown projection") && stderr.contains("key_lookup"),
        "{stderr}"
    );
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = keyledger(&dir)
        .args(["--database-url", "mysql://root@localhost/x", "migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"),
        "{out:?}"
    );

    let out = keyledger(&dir)
        .args(["serve", "--admin-addr", "127.0.0.1:0", "--bootstrap-token", "short"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bootstrap token"),
        "{out:?}"
    );

    let out = keyledger(&dir)
        .args(["serve", "--admin-addr", "127.0.0.1:0", "--usage-spool-max-mb", "5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--usage-spool-max-mb must be from 128"),
        "{out:?}"
    );

    let out = keyledger(&dir)
        .args(["serve", "--admin-addr", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage error");
}

/// Two processes on one data directory would both append to its usage spool: the second is
/// refused at start, saying why, and the first goes on.
#[tokio::test]
async fn a_second_server_on_the_same_data_directory_is_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _, admin) = serve(&dir, &[]);
    let out = keyledger(&dir)
        .args(["serve", "--admin-addr", "127.0.0.1:0", "--edge-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("is in use by another Keyledger process") && said.contains("--usage-spool-dir"),
        "{said}"
    );
    let health = reqwest::get(format!("http://{admin}/healthz")).await.unwrap();
    assert!(health.status().is_success(), "the first server goes on");
    terminate(first);
}

#[test]
fn endpoints_import_and_demo_seed_fill_the_registry_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let seed = keyledger(&dir).args(["demo", "seed"]).output().unwrap();
    assert!(seed.status.success(), "{seed:?}");
    let stdout = String::from_utf8_lossy(&seed.stdout);
    assert!(stdout.contains("registered, 0 changed, 0 unchanged"), "{stdout}");
    let again = keyledger(&dir).args(["demo", "seed"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("demo catalogue: 0 registered, 0 changed"),
        "{again:?}"
    );

    let file = dir.path().join("billing.yaml");
    std::fs::write(
        &file,
        "openapi: 3.1.0\ninfo: {title: Billing, version: '1'}\npaths:\n  /invoices/{id}:\n    get: {summary: Get an invoice, x-keyledger-scopes: [REPORTS_READ], responses: {}}\n",
    )
    .unwrap();
    let args = [
        "endpoints",
        "import",
        file.to_str().unwrap(),
        "--plugin",
        "Billing",
        "--upstream",
        "http://billing.internal",
    ];
    let out = keyledger(&dir).args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Billing: 1 registered, 0 changed, 0 unchanged"
    );
    let out = keyledger(&dir).args(args).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Billing: 0 registered, 0 changed, 1 unchanged"
    );

    std::fs::write(&file, "openapi: 2.0\n").unwrap();
    let bad = keyledger(&dir).args(args).output().unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid_openapi"),
        "{bad:?}"
    );

    // A store that so far holds only the demo catalogue still gets its bootstrap token.
    let (child, lines, _) = serve(&dir, &[]);
    assert!(lines[0].starts_with("bootstrap superuser token"), "{lines:?}");
    terminate(child);
}
