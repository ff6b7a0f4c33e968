//! What each subcommand does.

use crate::config::{AdminCommand, Cli, Command, Config, ProjectionsCommand};
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

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(serve) => {
            let app = Application::build(Config { db: cli.db, serve }).await?;
            if let Some(token) = app.bootstrap_token() {
                // Printed, never logged: this is the only time the token is shown.
                println!("bootstrap superuser token (tenant default), shown once:\n  {token}");
            }
            println!("admin listening on http://{}", app.admin_addr());
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate => {
            let db = Database::connect(&cli.db.database_url).await?;
            db.migrate().await?;
            println!("migrations applied");
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
            for model in models {
                let bar = ProgressBar::new(0).with_message(model.name());
                bar.set_style(
                    ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} events ({eta})")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                let at = keyledger_projections::rebuild(&db, model, |position, head| {
                    bar.set_length(head.max(0) as u64);
                    bar.set_position(position.max(0) as u64);
                })
                .await?;
                bar.finish();
                println!("{}: rebuilt up to position {at}", model.name());
            }
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
                    .map(|p| p.parse::<Permission>().map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<_>>()?,
                scopes: None,
                expires_at,
            };
            let issued = bus.issue_admin_token(&CommandContext::system(), req).await?;
            db.close().await;
            // Printed, never logged: the only time the token is shown.
            println!("{}", issued.value.secret);
            eprintln!(
                "admin token {} created; it works once a server has caught up",
                issued.value.id
            );
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
