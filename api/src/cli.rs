//! What each subcommand does.

/// `println!` that survives a closed stdout (a supervisor that stopped reading): the server keeps
/// running instead of panicking on the next line it prints.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use crate::app::Bootstrap;
use crate::config::{AdminCommand, Cli, Command, Config, DemoCommand, EndpointsCommand, ProjectionsCommand};
use crate::operations::import;
use crate::Application;
use indicatif::{ProgressBar, ProgressStyle};
use keyledger_commands::bus::IssueTokenRequest;
use keyledger_commands::clock::SystemClock;
use keyledger_commands::secrets::SecretHasher;
use keyledger_commands::wake::LogWatch;
use keyledger_commands::{CommandBus, CommandContext, Database};
use keyledger_domain::name::Name;
use keyledger_domain::{Permission, TenantId};
use keyledger_projections::ReadModel;
use std::sync::Arc;

/// The rollups of the usage log, rebuilt from `usage_batches` rather than the event log.
const USAGE_ROLLUPS: &str = "usage_rollups";

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(serve) => {
            // Signal handlers go in before anything is printed: a supervisor that reads "listening"
            // and sends SIGTERM at once must get a graceful stop, not the default kill.
            let shutdown = shutdown_signal()?;
            let app = Application::build(Config {
                db: cli.db,
                serve: *serve,
            })
            .await?;
            match app.bootstrap() {
                // Printed, never logged: this is the only time the token is shown.
                Some(Bootstrap::Generated(token)) => {
                    say!("bootstrap superuser token (tenant default), shown once:\n  {token}")
                }
                Some(Bootstrap::Configured) => {
                    say!("bootstrap superuser token (tenant default) created from the configured one")
                }
                None => {}
            }
            say!("admin listening on http://{}", app.admin_addr());
            say!("edge listening on http://{}", app.edge_addr());
            app.run_until_stopped(shutdown).await
        }
        Command::Migrate => {
            let db = Database::connect(&cli.db.database_url).await?;
            db.migrate().await?;
            say!("migrations applied");
            Ok(())
        }
        Command::Projections {
            command: ProjectionsCommand::Rebuild { name },
        } if name.as_deref() == Some(USAGE_ROLLUPS) => {
            let db = Database::connect(&cli.db.database_url).await?;
            db.migrate().await?;
            let bar = ProgressBar::new(0).with_message(USAGE_ROLLUPS);
            bar.set_style(
                ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} usage batches ({per_sec}, {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let records = keyledger_projections::usage::rollups::rebuild(&db, chrono::Utc::now(), |batch, last| {
                bar.set_length(last.max(0) as u64);
                bar.set_position(batch.max(0) as u64);
            })
            .await?;
            bar.finish();
            say!("{USAGE_ROLLUPS}: rebuilt from {records} usage records");
            Ok(())
        }
        Command::Projections {
            command: ProjectionsCommand::Rebuild { name },
        } => {
            let db = Database::connect(&cli.db.database_url).await?;
            db.migrate().await?;
            let models = match name {
                Some(n) => vec![ReadModel::parse(&n)?],
                None => ReadModel::ALL.to_vec(),
            };
            // One pass over the log for every model asked for.
            let bar = ProgressBar::new(0).with_message("read models");
            bar.set_style(
                ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let at = keyledger_projections::rebuild(&db, &models, |position, head| {
                bar.set_length(head.max(0) as u64);
                bar.set_position(position.max(0) as u64);
            })
            .await?;
            bar.finish();
            for model in models {
                say!("{}: rebuilt up to position {at}", model.name());
            }
            Ok(())
        }
        Command::Endpoints {
            command: EndpointsCommand::Import { file, plugin, upstream },
        } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let bus = system_bus(&cli.db.database_url).await?;
            let report = import_one(&bus, &text, &plugin, &upstream).await?;
            say!(
                "{}: {} registered, {} changed, {} unchanged",
                report.plugin,
                report.registered,
                report.changed,
                report.unchanged
            );
            Ok(())
        }
        Command::Demo {
            command: DemoCommand::Seed { upstream_base },
        } => {
            let bus = system_bus(&cli.db.database_url).await?;
            let bar = ProgressBar::new(crate::demo::CATALOGUE.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} plugins")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let mut totals = (0, 0, 0);
            for (plugin, path, document) in crate::demo::CATALOGUE {
                bar.set_message(*plugin);
                let upstream = format!("{}/{path}", upstream_base.trim_end_matches('/'));
                let report = import_one(&bus, document, plugin, &upstream).await?;
                totals = (
                    totals.0 + report.registered,
                    totals.1 + report.changed,
                    totals.2 + report.unchanged,
                );
                bar.inc(1);
            }
            bar.finish_and_clear();
            say!(
                "demo catalogue: {} registered, {} changed, {} unchanged",
                totals.0,
                totals.1,
                totals.2
            );
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::CreateToken {
                    name,
                    tenant,
                    permissions,
                    expires_at,
                    pbkdf2_iterations,
                },
        } => {
            let db = Database::connect(&cli.db.database_url).await?;
            db.migrate().await?;
            let bus = CommandBus::new(
                db.clone(),
                SecretHasher::new(pbkdf2_iterations),
                Arc::new(SystemClock),
                LogWatch::default(),
            );
            let req = IssueTokenRequest {
                tenant: Some(TenantId::try_from(tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?),
                name: Name::try_from(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?,
                permissions: permissions
                    .iter()
                    .map(|p| p.parse::<Permission>().map_err(anyhow::Error::from))
                    .collect::<anyhow::Result<_>>()?,
                scopes: None,
                expires_at,
            };
            let issued = bus.issue_admin_token(&CommandContext::system(), req).await?;
            db.close().await;
            // Printed, never logged: the only time the token is shown.
            say!("{}", issued.value.secret);
            eprintln!(
                "admin token {} created; it works once a server has caught up",
                issued.value.id
            );
            Ok(())
        }
    }
}

/// A command bus acting as the system (superuser), for CLI work straight against the database.
async fn system_bus(database_url: &str) -> anyhow::Result<CommandBus> {
    let db = Database::connect(database_url).await?;
    db.migrate().await?;
    Ok(CommandBus::new(
        db,
        SecretHasher::new(keyledger_commands::secrets::DEFAULT_ITERATIONS),
        Arc::new(SystemClock),
        LogWatch::default(),
    ))
}

async fn import_one(
    bus: &CommandBus,
    text: &str,
    plugin: &str,
    upstream: &str,
) -> anyhow::Result<crate::rest::endpoint_dto::ImportReport> {
    let committed = import::run(bus, &CommandContext::system(), text, plugin, upstream)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code.as_str(), e.message))?;
    Ok(committed.value)
}

/// Completes on Ctrl-C or SIGTERM; the handlers are registered when this is called.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        let terminate = async move {
            terminate.recv().await;
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate => {},
        }
        tracing::info!("shutting down");
    })
}
