//! The `identify-bridge` command: thin; parses arguments, loads configuration, runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use identify_bridge::config::Settings;
use identify_bridge::outbox::admin;
use identify_bridge::startup::{shutdown_signal, Application};
use identify_bridge::store::Store;
use identify_bridge::telemetry;

/// OpenID Connect sign-in bridge: login redirect, automatic profiles, identify calls.
#[derive(Parser)]
#[command(name = "identify-bridge", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// TOML configuration file; every key can also come from IDENTIFY_BRIDGE__SECTION__KEY.
        #[arg(long, short, env = "IDENTIFY_BRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate a configuration and print it resolved, secrets redacted.
    CheckConfig {
        #[arg(long, short, env = "IDENTIFY_BRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// See and act on the outbox of identify messages.
    Outbox {
        #[arg(long, short, env = "IDENTIFY_BRIDGE_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: OutboxCommand,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Pending, delivered and dead messages and the oldest pending age, per sink.
    Status,
    /// Dead letters with their reasons, oldest first.
    Dead {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Make dead letters pending again (one by message id, or all).
    Retry {
        #[arg(long, conflicts_with = "id")]
        all: bool,
        #[arg(required_unless_present = "all")]
        id: Option<uuid::Uuid>,
    },
    /// Enqueue an identify call for every existing profile.
    Replay {
        #[arg(long, required = true)]
        all_users: bool,
        /// Only this sink (default: every configured sink).
        #[arg(long)]
        sink: Option<String>,
        /// Profiles per second, e.g. `100` or `100/s`.
        #[arg(long, default_value = "50/s", value_parser = parse_rate)]
        rate: f64,
    },
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches("/s");
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("expected a positive rate such as 100/s, got {s:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("identify-bridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("identify-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let settings = Settings::load(config.as_deref())?;
            telemetry::init(settings.log.format, &settings.log.level);
            let app = Application::build(settings).await?;
            tracing::info!(address = %app.local_addr(), "identify-bridge listening");
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::CheckConfig { config } => {
            let settings = Settings::load(config.as_deref())?;
            println!("{}", settings.to_redacted_json());
            eprintln!("configuration is valid");
            Ok(())
        }
        Command::Outbox { config, command } => {
            let settings = Settings::load(config.as_deref())?;
            telemetry::init(settings.log.format, "warn");
            let store = Store::connect(settings.database.url.expose()).await?;
            let result = run_outbox(&store, &settings, command).await;
            store.close().await;
            result
        }
    }
}

async fn run_outbox(
    store: &Store,
    settings: &Settings,
    command: OutboxCommand,
) -> anyhow::Result<()> {
    match command {
        OutboxCommand::Status => print!("{}", admin::status_table(store).await?),
        OutboxCommand::Dead { limit } => print!("{}", admin::dead_table(store, limit).await?),
        OutboxCommand::Retry { all, id } => {
            let n = store.retry_dead(if all { None } else { id }).await?;
            println!("{n} message(s) pending again");
        }
        OutboxCommand::Replay { sink, rate, .. } => {
            let n = admin::replay_all(store, settings, sink.as_deref(), rate).await?;
            println!("{n} message(s) enqueued");
        }
    }
    Ok(())
}
