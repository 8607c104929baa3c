//! The `identify-bridge` command: thin; parses arguments, loads configuration, runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use identify_bridge::config::Settings;
use identify_bridge::startup::{shutdown_signal, Application};
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
    }
}
