//! `identify-bridge dev`: everything on one port with no configuration file. An SQLite database
//! under the data directory, the development OpenID provider under `/dev-idp` (reached by the
//! bridge over real HTTP through the same generic OIDC code as any provider), the built-in
//! Identify API as the one sink, and an open admin dashboard. Real providers from a
//! configuration file or the environment appear beside the development one.
//!
//! - `secrets.rs`: the API key and the sink's client secret, kept in the data directory.
//! - `notice.rs`: the development notice on every page.

mod notice;
mod secrets;

use std::net::SocketAddr;
use std::path::Path;

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{
    LogFormat, ProviderSettings, Secret, Settings, SinkFormat, SinkSettings, SinkTokenSettings,
};
use crate::dev_idp::DevIdp;
use crate::providers::generic::OidcSettings;

/// The development provider's name (URL segment) in the bridge.
pub const PROVIDER_NAME: &str = "dev";
const BRIDGE_CLIENT_ID: &str = "identify-bridge-dev";
const SINK_CLIENT_ID: &str = "identify-bridge-sink";
/// The login rate limit in `dev` (unless configured): a scripted demo signs in many times from
/// one address, and the development provider is on loopback anyway.
const DEV_LOGIN_PER_MINUTE: u32 = 6000;
const DEV_LOGIN_BURST: u32 = 1000;

pub use notice::add_notice;

/// What `dev` runs beside the settings: the development provider, and a ready-to-run command
/// for the Identify API (shown by the banner and the dashboard).
#[derive(Clone)]
pub struct DevMode {
    pub idp: DevIdp,
    pub identify_curl: IdentifyCurl,
}

/// One bash command line that fetches a client-credentials token from the development provider
/// and sends an identify call with it and the `dev` API key.
#[derive(Debug, Clone)]
pub struct IdentifyCurl(pub String);

/// Settings and the provider for `dev`. `base` comes from an optional file and the environment;
/// `listen` is the address already bound (its real port, when `--listen` asked for port 0).
pub fn prepare(
    mut base: Settings,
    listen: SocketAddr,
    data_dir: &Path,
) -> anyhow::Result<(Settings, DevMode)> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the data directory {}: {e}",
            data_dir.display()
        )
    })?;
    let public_url = Url::parse(&format!("http://{listen}"))?;
    base.server.listen = listen;
    base.server.public_url = public_url.clone();
    if base.database.url.expose() == crate::config::DatabaseSettings::default().url.expose() {
        base.database.url = Secret::new(format!(
            "sqlite://{}",
            data_dir.join("identify-bridge.db").display()
        ));
    }
    base.log.format = LogFormat::Pretty;
    base.admin.open = true;
    let default_limit = crate::config::RateLimitSettings::default();
    if base.rate_limit.login_per_minute == default_limit.login_per_minute
        && base.rate_limit.login_burst == default_limit.login_burst
    {
        base.rate_limit.login_per_minute = DEV_LOGIN_PER_MINUTE;
        base.rate_limit.login_burst = DEV_LOGIN_BURST;
    }

    let issuer = public_url.join("dev-idp")?;
    let idp = DevIdp::load_or_create(data_dir, issuer.clone())?;
    // The bridge's own client secret is fresh each run (nobody types it); the API key and the
    // sink's secret are kept so a printed curl keeps working after a restart.
    let bridge_secret = random_secret();
    let kept = secrets::DevSecrets::load_or_create(data_dir)?;
    if base.session.secret.is_none() {
        // Kept too: sign-ins in progress and their sealed cookies survive a restart.
        base.session.secret = Some(Secret::new(secrets::session_secret(data_dir)?));
    }
    let sink_secret = kept.sink_client_secret.clone();
    let api_key = kept.api_key.clone();
    // The web apps `return_to` may name are where a sign-out ends (`post_logout_redirect_uri`),
    // as one would register them at a real provider.
    for origin in &base.server.allowed_return_origins {
        if let Ok(url) = Url::parse(origin.as_str()) {
            idp.allow_post_logout_origin(url.origin());
        }
    }
    idp.add_client(
        BRIDGE_CLIENT_ID,
        &bridge_secret,
        vec![crate::providers::callback_url(&public_url, PROVIDER_NAME)],
        &["authorization_code"],
    );
    idp.add_client(
        SINK_CLIENT_ID,
        &sink_secret,
        Vec::new(),
        &["client_credentials"],
    );

    base.providers.retain(|p| p.name != PROVIDER_NAME);
    base.providers.insert(
        0,
        ProviderSettings {
            name: PROVIDER_NAME.into(),
            display_name: Some("Development provider".into()),
            client_id: BRIDGE_CLIENT_ID.into(),
            client_secret: Some(Secret::new(bridge_secret)),
            client_secret_file: None,
            scopes: ["openid", "profile", "email", "address", "phone"]
                .map(String::from)
                .to_vec(),
            token_auth_method: None,
            private_key_file: None,
            private_key_id: None,
            certificate_file: None,
            client_key: None,
            refresh_tokens: true,
            traits: Default::default(),
            allowed_email_domains: Vec::new(),
            required_groups: Vec::new(),
            kind: OidcSettings {
                issuer: issuer.clone(),
                trust_email_verified: false,
            }
            .into_kind(),
        },
    );
    if base.sinks.is_empty() {
        base.sinks.push(SinkSettings {
            name: "local".into(),
            format: SinkFormat::Seed,
            url: public_url.join("api/identify")?,
            api_key: Some(Secret::new(api_key.clone())),
            api_key_file: None,
            bearer_token: None,
            bearer_token_file: None,
            token: Some(SinkTokenSettings {
                token_url: Url::parse(&format!("{issuer}/token"))?,
                client_id: SINK_CLIENT_ID.into(),
                client_secret: Some(Secret::new(sink_secret.clone())),
                client_secret_file: None,
                scope: "telemetry_apis".into(),
                audience: None,
            }),
            batch_size: 100,
            timeout_secs: 10,
            backoff_base_ms: 500,
            backoff_cap_secs: 30,
            max_age_secs: 24 * 3600,
            exclude_traits: Vec::new(),
            hash_traits: Vec::new(),
            timestamp: None,
            send_client_ip: false,
            signing_secrets: Vec::new(),
            signing_secrets_file: None,
        });
        configure_identify_api(&mut base, &issuer, &api_key)?;
    }
    base.validate()?;
    let identify_curl = identify_curl(&public_url, &issuer, &sink_secret, &api_key);
    Ok((base, DevMode { idp, identify_curl }))
}

/// Let the built-in Identify API accept the local sink: the development provider's tokens and
/// the `dev` API key. An own `[identify_api]` keeps its keys and gains this one, and gets the
/// development provider as token issuer when it names none.
fn configure_identify_api(
    settings: &mut Settings,
    issuer: &Url,
    api_key: &str,
) -> anyhow::Result<()> {
    let api = settings.identify_api.get_or_insert_with(Default::default);
    let hash = hex::encode(Sha256::digest(api_key.as_bytes()));
    if !api.api_key_hashes.contains(&hash) {
        api.api_key_hashes.push(hash);
    }
    match &api.token_issuer {
        None => {
            api.token_issuer = Some(issuer.clone());
            api.token_audience = Some(crate::dev_idp::DEFAULT_API_AUDIENCE.to_string());
        }
        Some(own)
            if own.as_str().trim_end_matches('/') == issuer.as_str().trim_end_matches('/') => {}
        Some(own) if api.requires(crate::config::Credential::Token) => anyhow::bail!(
            "identify_api.token_issuer is {own}, so the local sink (whose tokens come from the \
             development provider at {issuer}) could not deliver: leave token_issuer out in \
             `dev`, or configure [[sinks]] of your own"
        ),
        Some(_) => {}
    }
    Ok(())
}

fn random_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

/// The command the banner and the dashboard print. Single-quoted where bash would otherwise
/// expand; the token request uses `client_secret_post`, and `sed` picks the token out of the
/// compact JSON answer (no `jq` needed).
fn identify_curl(public_url: &Url, issuer: &Url, sink_secret: &str, api_key: &str) -> IdentifyCurl {
    let base = public_url.as_str().trim_end_matches('/');
    let issuer = issuer.as_str().trim_end_matches('/');
    let body = r#"{"user_id":"demo-user-1","user_traits":{"enrichment_full_name":"Ana Souza","enrichment_email_provider":"Gmail"},"timestamp":"2024-01-15T09:30:00Z"}"#;
    IdentifyCurl(format!(
        "curl -fsS {base}/api/identify \
         -H \"Authorization: Bearer $(curl -fsS {issuer}/token -d grant_type=client_credentials \
         -d client_id={SINK_CLIENT_ID} -d client_secret={sink_secret} -d scope=telemetry_apis \
         | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')\" \
         -H 'KEY: {api_key}' -H 'Content-Type: application/json' -d '{body}'"
    ))
}

/// The start-up banner: what this is, where to go, how to call the Identify API, and that it
/// is not for production.
pub fn banner(settings: &Settings, dev: &DevMode) -> String {
    let url = settings.server.public_url.as_str().trim_end_matches('/');
    format!(
        "\n  identify-bridge dev: DEVELOPMENT MODE, not for production\n\
         \n    sign in      {url}/login\n    your profile {url}/\n    dashboard    {url}/admin\n    dev provider {url}/dev-idp/.well-known/openid-configuration\n    database     {}\n\
         \n  Send an identify call to the built-in Identify API (token from the development provider,\n  \
         the dev API key; both kept in the data directory):\n\n{}\n\
         \n  The development provider signs in anyone who types a name. It listens on loopback only.\n  \
         The login rate limit is {} per minute here (rate_limit.login_per_minute to change it).\n",
        redact_db(settings.database.url.expose()),
        dev.identify_curl.0,
        settings.rate_limit.login_per_minute,
    )
}

fn redact_db(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
