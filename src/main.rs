//! The `identify-bridge` command: thin; parses arguments, loads configuration, runs.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use identify_bridge::config::Settings;
use identify_bridge::outbox::admin;
use identify_bridge::startup::{shutdown_signal, Application};
use identify_bridge::store::Store;
use identify_bridge::{telemetry, traits};

/// OpenID Connect sign-in bridge: login redirect, automatic profiles, identify calls.
#[derive(Parser)]
#[command(name = "identify-bridge", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the configuration comes from.
#[derive(Args, Clone)]
struct ConfigArg {
    /// TOML configuration file; every key can also come from IDENTIFY_BRIDGE__SECTION__KEY.
    #[arg(long, short, env = "IDENTIFY_BRIDGE_CONFIG", global = true)]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn load(&self) -> anyhow::Result<Settings> {
        Ok(Settings::load(
            self.config.as_deref(),
            &identify_bridge::providers::KINDS,
        )?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ConfigArg),
    /// Validate a configuration for `serve` and print it resolved, secrets redacted, with each
    /// provider's effective issuer and the redirect URI to register.
    CheckConfig {
        /// Print the configuration's JSON Schema instead (generated from the code).
        #[arg(long)]
        schema: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Try it all on one machine: a development OpenID provider, SQLite under --data-dir, the
    /// built-in Identify API as the sink, an open dashboard. For development only.
    Dev {
        /// Address to listen on; loopback only unless --expose is given.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Where the database and the development provider's signing key live.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Allow a non-loopback --listen address (the development provider signs anyone in).
        #[arg(long)]
        expose: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Run the database migrations and exit.
    Migrate(ConfigArg),
    /// Show the traits a claim set (JSON on stdin) would produce for a provider, custom traits
    /// included; no network.
    ///
    /// Input: the merged ID-token + userinfo claims as one JSON object, or `{"claims": {...},
    /// "graph": {"me": {...}, "organization": {...}, "groups": [...]}, "okta_user": {...}}`
    /// (`okta_user`: the Okta Users API's `/api/v1/users/me` answer; `graph.groups`: the group
    /// ids Graph lists for an Entra group overage).
    Traits {
        #[command(flatten)]
        config: ConfigArg,
        /// The provider's `name` in the configuration.
        #[arg(long)]
        provider: String,
    },
    /// Look up or erase users.
    Users {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        action: UsersAction,
    },
    /// See and act on the outbox of identify messages.
    Outbox {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Print a shell completion script, e.g. `identify-bridge completions bash >
    /// /etc/bash_completion.d/identify-bridge`.
    Completions {
        /// The shell to complete for.
        shell: CompletionShell,
    },
}

/// Shells `completions` writes scripts for.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand)]
enum UsersAction {
    /// Print a profile with its identities and traits as JSON.
    Get {
        /// The profile's user_id (as in /me, the dashboard and identify calls).
        user_id: String,
    },
    /// Erase a profile, its identities, sessions and queued identify messages.
    Delete {
        /// The profile's user_id (as in /me, the dashboard and identify calls).
        user_id: String,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Pending, delivered and dead messages and the oldest pending age, per sink.
    Status,
    /// Dead letters with their reasons, oldest first.
    Dead {
        /// At most this many dead letters.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Make dead letters pending again (one by message id, or all).
    Retry {
        /// Every dead letter, of every sink.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// The message id of one dead letter (from `outbox dead`).
        #[arg(required_unless_present = "all")]
        id: Option<uuid::Uuid>,
    },
    /// Enqueue an identify call for every existing profile.
    Replay {
        /// Required, to say that every profile is meant.
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
        Ok(code) => code,
        Err(e) => {
            eprintln!("identify-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(config) => {
            let settings = config.load()?;
            settings.check_for_serve()?;
            let traces = telemetry::init_with_traces(
                settings.log.format,
                &settings.log.level,
                &settings.telemetry,
            )?;
            let app = Application::build(settings).await?;
            tracing::info!(address = %app.local_addr(), "identify-bridge listening");
            let result = app.run_until_stopped(shutdown_signal()).await;
            if let Some(traces) = traces {
                traces.shutdown().await;
            }
            result?;
        }
        Command::Dev {
            listen,
            data_dir,
            expose,
            config,
        } => {
            if !listen.ip().is_loopback() && !expose {
                anyhow::bail!(
                    "refusing to serve the development provider on {listen}: it signs in anyone. \
                     Use a loopback address, or pass --expose if you really mean it"
                );
            }
            // Bound first, so `--listen 127.0.0.1:0` gets a port that the URLs can name.
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let listen = listener.local_addr()?;
            let (settings, dev) = identify_bridge::dev::prepare(config.load()?, listen, &data_dir)?;
            let traces = telemetry::init_with_traces(
                settings.log.format,
                &settings.log.level,
                &settings.telemetry,
            )?;
            eprintln!("{}", identify_bridge::dev::banner(&settings, &dev));
            let app = Application::build_full(settings, listener, Some(dev)).await?;
            let result = app.run_until_stopped(shutdown_signal()).await;
            if let Some(traces) = traces {
                traces.shutdown().await;
            }
            result?;
        }
        Command::CheckConfig { schema: true, .. } => {
            out(&serde_json::to_string_pretty(&Settings::schema(
                &identify_bridge::providers::KINDS,
            ))?);
        }
        Command::CheckConfig { config, .. } => {
            let settings = config.load()?;
            settings.check_for_serve()?;
            out(&identify_bridge::providers::resolved_json(&settings));
            for p in &settings.providers {
                let public = &settings.server.public_url;
                eprintln!(
                    "provider {}: redirect URI {}, back-channel logout URI {}",
                    p.name,
                    identify_bridge::providers::callback_url(public, &p.name),
                    identify_bridge::routes::backchannel::backchannel_logout_url(public, &p.name)
                );
                if let Some(key) = &p.client_key {
                    eprintln!(
                        "provider {}: private_key_jwt with a {:?} key{}{}",
                        p.name,
                        key.algorithm(),
                        key.key_id()
                            .map(|kid| format!(", kid {kid}"))
                            .unwrap_or_default(),
                        key.thumbprint()
                            .map(|t| format!(", certificate thumbprint (x5t#S256) {t}"))
                            .unwrap_or_default(),
                    );
                }
            }
            eprintln!("configuration is valid");
        }
        Command::Migrate(config) => {
            let settings = config.load()?;
            let store = connect(&settings).await?;
            store.migrate().await?;
            eprintln!("migrations applied ({:?})", store.backend());
        }
        Command::Traits { config, provider } => {
            let settings = config.load()?;
            let p = settings
                .providers
                .iter()
                .find(|p| p.name == provider)
                .with_context(|| format!("no provider named {provider:?} in the configuration"))?;
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("reading claims from stdin")?;
            let value: serde_json::Value =
                serde_json::from_str(&input).context("stdin is not JSON")?;
            let (claims, graph, okta_user) = split_claims(value)?;
            let quirks = identify_bridge::providers::quirks_for(p);
            let mut data = identify_bridge::providers::ProviderData {
                graph,
                okta_user,
                groups_unresolved: false,
            };
            data.groups_unresolved = quirks.unresolved_groups(&claims, &data);
            let subject = claims
                .get("sub")
                .and_then(|s| s.as_str())
                .unwrap_or_default();
            let facts = identify_bridge::signin::facts_from(
                p,
                quirks.as_ref(),
                identify_bridge::signin::Verified {
                    issuer: &identify_bridge::providers::issuer_of(p),
                    subject,
                    claims: &claims,
                },
                &data,
                &settings.server.public_url,
                chrono::Utc::now(),
            );
            let preview = serde_json::json!({
                "traits": facts.traits.traits.to_map(),
                "provenance": facts.traits.provenance,
                "account_created_at": facts.created_at.map(traits::format_time),
            });
            out(&serde_json::to_string_pretty(&preview)?);
        }
        Command::Users { config, action } => {
            let settings = config.load()?;
            let store = connect_existing(&settings).await?;
            match action {
                UsersAction::Get { user_id } => match store.get_user(&user_id).await? {
                    Some(user) => out(&serde_json::to_string_pretty(&user)?),
                    None => {
                        eprintln!("no user {user_id:?}");
                        return Ok(ExitCode::from(2));
                    }
                },
                UsersAction::Delete { user_id } => {
                    let sessions = identify_bridge::session_store::AnySessionStore::from_settings(
                        &settings, &store,
                    )
                    .await?;
                    if sessions.erase_user(&store, &user_id).await? {
                        eprintln!("user {user_id:?} erased");
                    } else {
                        eprintln!("no user {user_id:?}");
                        return Ok(ExitCode::from(2));
                    }
                }
            }
        }
        Command::Completions { shell } => {
            let shell = match shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "identify-bridge", &mut script);
            let mut script = String::from_utf8(script).context("completion script")?;
            if matches!(shell, clap_complete::Shell::Bash) {
                // clap_complete's bash arms spell a hyphenated bin name differently from its
                // dispatch loop (clap-rs/clap#6421, open), so nothing after a subcommand
                // completes; spell them alike. tests/api/cli.rs completes `outbox <TAB>`.
                script = script.replace("identify__subcmd__bridge", "identify__bridge");
            }
            out(script.trim_end());
        }
        Command::Outbox { config, command } => {
            let settings = config.load()?;
            telemetry::init(settings.log.format, "warn");
            let store = connect_existing(&settings).await?;
            let result = run_outbox(&store, &settings, command).await;
            store.close().await;
            result?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Print a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Connect, creating the database if needed (`migrate`).
async fn connect(settings: &Settings) -> anyhow::Result<Store> {
    Store::connect(settings.database.url.expose())
        .await
        .map_err(|e| anyhow::anyhow!("database: {e}"))
}

/// Connect to a database that exists: a wrong path stops with its name instead of a new,
/// empty database and an empty answer.
async fn connect_existing(settings: &Settings) -> anyhow::Result<Store> {
    Store::connect_existing(settings.database.url.expose())
        .await
        .map_err(|e| anyhow::anyhow!("database: {e}"))
}

type Claims = serde_json::Map<String, serde_json::Value>;

/// Accept bare claims or `{"claims": …, "graph": …, "okta_user": …}`.
fn split_claims(
    value: serde_json::Value,
) -> anyhow::Result<(
    Claims,
    Option<identify_bridge::providers::graph::GraphProfile>,
    Option<Claims>,
)> {
    let serde_json::Value::Object(mut map) = value else {
        anyhow::bail!("stdin must hold a JSON object of claims");
    };
    let wrapped = matches!(map.get("claims"), Some(serde_json::Value::Object(_)))
        && map
            .keys()
            .all(|k| k == "claims" || k == "graph" || k == "okta_user");
    if wrapped {
        let graph = match map.remove("graph") {
            Some(g) => Some(serde_json::from_value(g).context(
                "`graph` must be {\"me\": {...}, \"organization\": {...}, \"groups\": [...]}",
            )?),
            None => None,
        };
        let okta_user = match map.remove("okta_user") {
            Some(serde_json::Value::Object(user)) => Some(user),
            Some(_) => anyhow::bail!("`okta_user` must be the Users API's user object"),
            None => None,
        };
        let claims = match map.remove("claims") {
            Some(serde_json::Value::Object(claims)) => claims,
            _ => Claims::new(),
        };
        return Ok((claims, graph, okta_user));
    }
    Ok((map, None, None))
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
