//! Command line and environment configuration (DESIGN.md §11).

use clap::{Args, Parser, Subcommand};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "keyledger", version, about = "Event-sourced API key management")]
pub struct Cli {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the admin API (REST, GraphQL), the auth edge, projections and the expiry scheduler.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate,
    /// Work with projections (read models).
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Work with the endpoint registry.
    Endpoints {
        #[command(subcommand)]
        command: EndpointsCommand,
    },
    /// Demo data for a first look.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Administration straight against the database (e.g. when every admin token is lost).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// Import a plugin's endpoints from an OpenAPI 3.0/3.1 file (JSON or YAML); idempotent.
    Import {
        file: std::path::PathBuf,
        #[arg(long)]
        plugin: String,
        /// The plugin's service base URL.
        #[arg(long)]
        upstream: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Load the demo endpoint catalogue (every plugin of the platform); idempotent.
    Seed {
        /// Base URL of the demo services; each plugin gets BASE/<plugin>.
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        upstream_base: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin token and print it once. Acts as the system (recorded so in the audit log).
    CreateToken {
        /// Unique per tenant.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// API_MANAGEMENT_READ, API_MANAGEMENT_WRITE, TENANT_ADMIN or SUPERUSER; repeatable.
        #[arg(long = "permission", default_value = "SUPERUSER")]
        permissions: Vec<String>,
        /// RFC 3339; never expires when omitted.
        #[arg(long)]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, env = "KEYLEDGER_PBKDF2_ITERATIONS", default_value_t = keyledger_commands::secrets::DEFAULT_ITERATIONS)]
        pbkdf2_iterations: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuild one read model (or all) from the start of the event log.
    Rebuild {
        /// admin_tokens, key_list, key_lookup, audit or endpoints; all when omitted. usage_rollups
        /// (from the usage log, not the event log) only when named.
        name: Option<String>,
    },
}

#[derive(Clone, Args)]
pub struct DbArgs {
    /// sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "KEYLEDGER_DATABASE_URL",
        default_value = "sqlite://./keyledger-data/keyledger.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
}

impl fmt::Debug for DbArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbArgs")
            .field("database_url", &keyledger_commands::redact_url(&self.database_url))
            .finish()
    }
}

#[derive(Clone, Args)]
pub struct ServeArgs {
    /// Admin API address; port 0 picks a free port.
    #[arg(long, env = "KEYLEDGER_ADMIN_ADDR", default_value = "127.0.0.1:8080")]
    pub admin_addr: SocketAddr,
    /// Auth edge address: forward auth (`/auth`), the verify API (`/v1/keys/verify`) and the proxy to registered endpoints.
    #[arg(long, env = "KEYLEDGER_EDGE_ADDR", default_value = "127.0.0.1:8000")]
    pub edge_addr: SocketAddr,
    /// The edge's address as clients reach it (e.g. https://api.example.com); written into tenant
    /// OpenAPI documents and SDKs. Default: http://EDGE_ADDR.
    #[arg(long, env = "KEYLEDGER_PUBLIC_EDGE_URL")]
    pub public_edge_url: Option<String>,
    /// Superuser token to create on an empty store instead of a random one (for scripts).
    #[arg(long, env = "KEYLEDGER_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// Secret for the edge's fast key verifiers (HMAC); at least 32 characters. Default: a random
    /// one generated into `edge-pepper` in the data directory. Nodes sharing a database should
    /// share it (with different peppers each node computes its verifiers once, by PBKDF2).
    #[arg(long, env = "KEYLEDGER_EDGE_PEPPER", hide_env_values = true)]
    pub edge_pepper: Option<String>,
    /// Proxies whose X-Forwarded-For the edge believes (comma-separated CIDRs), e.g. 10.0.0.0/8.
    #[arg(long, env = "KEYLEDGER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How many PBKDF2 checks (for keys whose fast verifier is not known yet) run at once.
    #[arg(long, env = "KEYLEDGER_PBKDF2_CONCURRENCY", default_value_t = 2)]
    pub pbkdf2_concurrency: usize,
    /// PBKDF2-HMAC-SHA256 iterations for new hashes (stored in each hash).
    #[arg(long, env = "KEYLEDGER_PBKDF2_ITERATIONS", default_value_t = keyledger_commands::secrets::DEFAULT_ITERATIONS)]
    pub pbkdf2_iterations: u32,
    /// How often the expiry scheduler looks for keys to warn about or expire, in seconds.
    #[arg(long, env = "KEYLEDGER_EXPIRY_CHECK_SECONDS", default_value_t = 60.0)]
    pub expiry_check_seconds: f64,
    /// Days raw usage records are kept (streams replay from them); usage figures (hourly and
    /// daily rollups) are kept beyond.
    #[arg(long, env = "KEYLEDGER_USAGE_RETENTION_DAYS", default_value_t = 30)]
    pub usage_retention_days: u32,
    /// Where the edge spools usage records until they are stored (default: `usage-spool` in the
    /// data directory). Each node needs its own; a second process is refused.
    #[arg(long, env = "KEYLEDGER_USAGE_SPOOL_DIR")]
    pub usage_spool_dir: Option<std::path::PathBuf>,
    /// How large the usage spool may grow while the database does not take its records, in MiB
    /// (at least 128); beyond it the edge drops records and counts them.
    #[arg(long, env = "KEYLEDGER_USAGE_SPOOL_MAX_MB", default_value_t = 1024)]
    pub usage_spool_max_mb: u64,
    /// Address ranges webhook deliveries may reach although they are private, loopback or
    /// otherwise refused by default (comma-separated CIDRs), e.g. 10.0.0.0/8.
    #[arg(long, env = "KEYLEDGER_WEBHOOK_ALLOW_CIDRS", value_delimiter = ',')]
    pub webhook_allow_cidrs: Vec<ipnet::IpNet>,
    /// The waits between a failed webhook delivery's attempts, in seconds, comma-separated; each
    /// is spread by up to 20 % either way.
    #[arg(long, env = "KEYLEDGER_WEBHOOK_RETRY_SCHEDULE", default_value_t)]
    pub webhook_retry_schedule: keyledger_domain::webhook::delivery::RetrySchedule,
    /// How long one webhook attempt may take, connecting included, in seconds.
    #[arg(long, env = "KEYLEDGER_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 15.0)]
    pub webhook_timeout_seconds: f64,
    /// Webhook attempts in flight on this node at most.
    #[arg(long, env = "KEYLEDGER_WEBHOOK_CONCURRENCY", default_value_t = 64)]
    pub webhook_concurrency: usize,
    /// Webhook attempts in flight to one subscription on this node at most.
    #[arg(long, env = "KEYLEDGER_WEBHOOK_SUBSCRIPTION_CONCURRENCY", default_value_t = 8)]
    pub webhook_subscription_concurrency: usize,
    /// Days finished webhook deliveries and their attempts are kept in the delivery log.
    #[arg(long, env = "KEYLEDGER_WEBHOOK_LOG_RETENTION_DAYS", default_value_t = 30)]
    pub webhook_log_retention_days: u32,
    /// How often usage alert rules are judged, in seconds.
    #[arg(long, env = "KEYLEDGER_ALERT_CHECK_SECONDS", default_value_t = 60.0)]
    pub alert_check_seconds: f64,
    /// Hours a subscription may fail every attempt before it is disabled.
    #[arg(long, env = "KEYLEDGER_WEBHOOK_DISABLE_AFTER_HOURS", default_value_t = 120.0)]
    pub webhook_disable_after_hours: f64,
}

impl fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeArgs")
            .field("admin_addr", &self.admin_addr)
            .field("edge_addr", &self.edge_addr)
            .field("public_edge_url", &self.public_edge_url)
            .field("edge_pepper", &self.edge_pepper.as_ref().map(|_| "***"))
            .field("trusted_proxies", &self.trusted_proxies)
            .field("pbkdf2_concurrency", &self.pbkdf2_concurrency)
            .field("bootstrap_token", &self.bootstrap_token.as_ref().map(|_| "***"))
            .field("pbkdf2_iterations", &self.pbkdf2_iterations)
            .field("expiry_check_seconds", &self.expiry_check_seconds)
            .field("usage_retention_days", &self.usage_retention_days)
            .field("usage_spool_dir", &self.usage_spool_dir)
            .field("usage_spool_max_mb", &self.usage_spool_max_mb)
            .field("webhook_allow_cidrs", &self.webhook_allow_cidrs)
            .field("webhook_retry_schedule", &self.webhook_retry_schedule)
            .field("webhook_timeout_seconds", &self.webhook_timeout_seconds)
            .field("webhook_concurrency", &self.webhook_concurrency)
            .field(
                "webhook_subscription_concurrency",
                &self.webhook_subscription_concurrency,
            )
            .field("webhook_disable_after_hours", &self.webhook_disable_after_hours)
            .field("alert_check_seconds", &self.alert_check_seconds)
            .field("webhook_log_retention_days", &self.webhook_log_retention_days)
            .finish()
    }
}

/// Everything `Application::build` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbArgs,
    pub serve: ServeArgs,
}

impl Config {
    /// The directory for files beside the embedded database (the generated edge pepper).
    pub fn data_dir(&self) -> std::path::PathBuf {
        let url = &self.db.database_url;
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let file = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                return dir.to_path_buf();
            }
        }
        std::path::PathBuf::from("keyledger-data")
    }

    /// The usage spool's directory and size limit.
    pub fn usage_spool(&self) -> keyledger_projections::usage::SpoolConfig {
        keyledger_projections::usage::SpoolConfig {
            dir: self
                .serve
                .usage_spool_dir
                .clone()
                .unwrap_or_else(|| self.data_dir().join("usage-spool")),
            max_bytes: self.serve.usage_spool_max_mb << 20,
        }
    }

    /// How the webhook dispatcher delivers.
    pub fn webhooks(&self) -> keyledger_projections::dispatch::Settings {
        let s = &self.serve;
        keyledger_projections::dispatch::Settings {
            destination: keyledger_domain::webhook::target::Destination {
                allowed: s.webhook_allow_cidrs.clone(),
            },
            schedule: s.webhook_retry_schedule.clone(),
            timeout: Duration::from_secs_f64(s.webhook_timeout_seconds),
            concurrency: s.webhook_concurrency,
            per_subscription: s.webhook_subscription_concurrency,
            disable_after: chrono::Duration::milliseconds((s.webhook_disable_after_hours * 3_600_000.0) as i64),
            log_retention: chrono::Duration::days(s.webhook_log_retention_days.into()),
        }
    }

    /// Where clients reach the edge.
    pub fn edge_url(&self) -> String {
        self.serve
            .public_edge_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.serve.edge_addr))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Checks what clap cannot: ranges and secrets' shape.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.serve.bootstrap_token {
            if token.len() < 24 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::BootstrapToken);
            }
        }
        if let Some(url) = &self.serve.public_edge_url {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(ConfigError::PublicEdgeUrl);
            }
        }
        if self.serve.pbkdf2_iterations == 0 {
            return Err(ConfigError::Pbkdf2Iterations);
        }
        if !(self.serve.expiry_check_seconds > 0.0 && self.serve.expiry_check_seconds <= 86_400.0) {
            return Err(ConfigError::ExpiryCheckSeconds);
        }
        if !(1..=3_650).contains(&self.serve.usage_retention_days) {
            return Err(ConfigError::UsageRetentionDays);
        }
        if !(128..=1 << 20).contains(&self.serve.usage_spool_max_mb) {
            return Err(ConfigError::UsageSpoolMaxMb);
        }
        if !(self.serve.webhook_timeout_seconds >= 0.1 && self.serve.webhook_timeout_seconds <= 300.0) {
            return Err(ConfigError::WebhookTimeout);
        }
        if !(1..=4_096).contains(&self.serve.webhook_concurrency)
            || !(1..=self.serve.webhook_concurrency).contains(&self.serve.webhook_subscription_concurrency)
        {
            return Err(ConfigError::WebhookConcurrency);
        }
        if !(1..=3_650).contains(&self.serve.webhook_log_retention_days) {
            return Err(ConfigError::WebhookLogRetentionDays);
        }
        if !(self.serve.alert_check_seconds > 0.0 && self.serve.alert_check_seconds <= 86_400.0) {
            return Err(ConfigError::AlertCheckSeconds);
        }
        if !(self.serve.webhook_disable_after_hours > 0.0 && self.serve.webhook_disable_after_hours <= 8_760.0) {
            return Err(ConfigError::WebhookDisableAfter);
        }
        Ok(())
    }
}

/// Settings that parse but cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the bootstrap token must be at least 24 characters without spaces")]
    BootstrapToken,
    #[error("--public-edge-url must be an http(s) URL")]
    PublicEdgeUrl,
    #[error("--pbkdf2-iterations must be at least 1")]
    Pbkdf2Iterations,
    #[error("--usage-retention-days must be from 1 to 3650")]
    UsageRetentionDays,
    #[error("--usage-spool-max-mb must be from 128 to 1048576")]
    UsageSpoolMaxMb,
    #[error("--expiry-check-seconds must be between 0 and 86400")]
    ExpiryCheckSeconds,
    #[error("--webhook-timeout-seconds must be from 0.1 to 300")]
    WebhookTimeout,
    #[error("--webhook-concurrency must be from 1 to 4096, and --webhook-subscription-concurrency from 1 to it")]
    WebhookConcurrency,
    #[error("--webhook-disable-after-hours must be above 0 and at most 8760 (a year)")]
    WebhookDisableAfter,
    #[error("--alert-check-seconds must be between 0 and 86400")]
    AlertCheckSeconds,
    #[error("--webhook-log-retention-days must be from 1 to 3650")]
    WebhookLogRetentionDays,
}
