//! The one way tests start the application, shared by the `api` and `browser` test binaries.
//!
//! [`AppBuilder`] takes the configuration as raw TOML (so configuration changes do not ripple
//! into the harness), fills in only what a test leaves out — the listen address and public URL
//! of a random port, a fresh SQLite file, quiet logs — builds the same `Application` that `main`
//! runs, optionally with the development provider, starts it, and waits until every provider is
//! ready. [`client`] is the one HTTP client builder; [`poll`] waits for a condition instead of
//! sleeping.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use identify_bridge::config::Settings;
use identify_bridge::startup::Application;
use identify_bridge::store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long start-up may take before a test fails (provider discovery included).
const READY_WITHIN: Duration = Duration::from_secs(15);

/// Builds and starts one application. See the module documentation.
#[must_use]
pub struct AppBuilder {
    toml: String,
    database_url: Option<String>,
    listener: Option<TcpListener>,
    public_url: Option<String>,
    dev_provider: bool,
    wait_ready: bool,
}

/// A running application; stopped when dropped.
pub struct RunningApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    pub store: Store,
    /// The configuration file the application was built from.
    pub config_path: PathBuf,
    stop: CancellationToken,
    /// `run_until_stopped`, until [`RunningApp::shut_down`] takes it.
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    data: tempfile::TempDir,
}

impl Default for AppBuilder {
    fn default() -> Self {
        AppBuilder {
            toml: String::new(),
            database_url: None,
            listener: None,
            public_url: None,
            dev_provider: false,
            wait_ready: true,
        }
    }
}

impl AppBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Raw TOML, appended to what was given before (text, so lines added after a
    /// `[[providers]]` table land in that table).
    pub fn toml(mut self, toml: &str) -> Self {
        self.toml.push_str(toml);
        self.toml.push('\n');
        self
    }

    /// `database.url` (default: a fresh SQLite file in the app's temp directory).
    pub fn database(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Serve on this listener (default: a fresh one on a random loopback port).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// `server.public_url` (default: the app's own address), e.g. replicas behind one URL.
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.to_owned());
        self
    }

    /// Run as `identify-bridge dev` does: the development provider on the same port, with the
    /// committed test signing key (no key generation per test).
    pub fn dev_provider(mut self) -> Self {
        self.dev_provider = true;
        self
    }

    /// Do not wait for the providers (for tests of an app that cannot become ready).
    pub fn no_wait(mut self) -> Self {
        self.wait_ready = false;
        self
    }

    pub async fn start(self) -> RunningApp {
        let listener = match self.listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        };
        let addr = listener.local_addr().unwrap();
        let address = format!("http://{addr}");
        let data = tempfile::tempdir().expect("temp dir");
        let mut config: toml::Table = toml::from_str(&self.toml)
            .unwrap_or_else(|e| panic!("test TOML does not parse: {e}\n{}", self.toml));
        let public_url = self.public_url.unwrap_or_else(|| address.clone());
        default(&mut config, "server", "listen", addr.to_string());
        default(&mut config, "server", "public_url", public_url);
        default(&mut config, "log", "format", "pretty".into());
        default(&mut config, "log", "level", "warn".into());
        // `dev` chooses its own database under the data directory unless one is configured.
        match (self.database_url, self.dev_provider) {
            (Some(url), _) => default(&mut config, "database", "url", url),
            (None, false) => {
                let file = data.path().join("bridge.db");
                default(
                    &mut config,
                    "database",
                    "url",
                    format!("sqlite://{}", file.display()),
                )
            }
            (None, true) => {}
        }
        let config_path = data.path().join("bridge.toml");
        std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
        let settings = Settings::load_with_env(
            Some(&config_path),
            Vec::new(),
            &identify_bridge::providers::KINDS,
        )
        .unwrap_or_else(|e| panic!("test configuration is invalid: {e}"));
        identify_bridge::telemetry::init(
            settings.log.format,
            &std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()),
        );
        let app = match self.dev_provider {
            true => {
                let dev_data = data.path().join("dev");
                std::fs::create_dir_all(&dev_data).unwrap();
                std::fs::copy(test_signing_key(), dev_data.join("dev-idp-signing-key.pem"))
                    .unwrap();
                let (settings, dev) =
                    identify_bridge::dev::prepare(settings, addr, &dev_data).expect("dev settings");
                Application::build_full(settings, listener, Some(dev)).await
            }
            false => Application::build_with_listener(settings, listener).await,
        }
        .expect("app builds");
        let providers = app.providers().clone();
        let stop = app.stop_token();
        let store = app.store().clone();
        let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
        // After spawning: the development provider is served by the app itself.
        if self.wait_ready {
            assert!(
                providers.wait_ready(READY_WITHIN).await,
                "a provider did not become ready within {READY_WITHIN:?}"
            );
        }
        RunningApp {
            port: addr.port(),
            address,
            store,
            config_path,
            stop,
            server: Some(server),
            data,
        }
    }
}

/// Set `table.key` unless the test's TOML set it.
fn default(config: &mut toml::Table, table: &str, key: &str, value: String) {
    let section = config
        .entry(table)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(section) = section.as_table_mut() {
        section
            .entry(key)
            .or_insert_with(|| toml::Value::String(value));
    }
}

fn test_signing_key() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-signing-key.pem"
    ))
}

impl RunningApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The app's temp directory (its database, configuration, the development provider's key).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stop as SIGTERM does and wait until the application has stopped (server and workers);
    /// returns how long that took.
    pub async fn shut_down(&mut self) -> Duration {
        let started = Instant::now();
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the app task")
                .expect("the app stops cleanly");
        }
        started.elapsed()
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The one HTTP client builder: redirects are left to the test; with `cookies`, a jar of its
/// own, like a browser.
pub fn client_builder(cookies: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
}

/// A client that acts like a browser: its own cookie jar, redirects left to the test.
pub fn client() -> reqwest::Client {
    client_builder(true).build().unwrap()
}

/// Evaluate `check` every 20 ms until it returns `Some`, for at most `within`; panics naming
/// `what` if it never does.
pub async fn poll<T, F, Fut>(what: &str, within: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match try_poll(within, check).await {
        Some(value) => value,
        None => panic!("{what}: not within {within:?}"),
    }
}

/// [`poll`] that returns `None` at the deadline, for a test that explains the failure itself.
pub async fn try_poll<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
