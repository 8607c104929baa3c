//! `identify-bridge dev`: everything on one port with no configuration file. An SQLite database
//! under the data directory, the development OpenID provider under `/dev-idp` (reached by the
//! bridge over real HTTP through the same generic OIDC code as any provider), the built-in
//! Identify API as the one sink, and an open admin dashboard. Real providers from a
//! configuration file or the environment appear beside the development one.

use std::net::SocketAddr;
use std::path::Path;

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{
    LogFormat, OneOrMany, ProviderKind, ProviderSettings, Secret, Settings, SinkFormat,
    SinkSettings, SinkTokenSettings,
};
use crate::dev_idp::DevIdp;

/// The development provider's name (URL segment) in the bridge.
pub const PROVIDER_NAME: &str = "dev";
const BRIDGE_CLIENT_ID: &str = "identify-bridge-dev";
const SINK_CLIENT_ID: &str = "identify-bridge-sink";

/// Settings and the provider for `dev`. `base` comes from an optional file and the environment.
pub fn prepare(
    mut base: Settings,
    listen: SocketAddr,
    data_dir: &Path,
) -> anyhow::Result<(Settings, DevIdp)> {
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

    let issuer = public_url.join("dev-idp")?;
    let idp = DevIdp::load_or_create(data_dir, issuer.clone())?;
    // Fresh secrets each run: nothing to leak from a previous one.
    let bridge_secret = random_secret();
    let sink_secret = random_secret();
    let api_key = random_secret();
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
            kind: ProviderKind::Oidc,
            display_name: Some("Development provider".into()),
            client_id: BRIDGE_CLIENT_ID.into(),
            client_secret: Some(Secret::new(bridge_secret)),
            client_secret_file: None,
            scopes: ["openid", "profile", "email", "address", "phone"]
                .map(String::from)
                .to_vec(),
            token_auth_method: Default::default(),
            issuer: Some(issuer.clone()),
            tenant: None,
            allowed_tenants: Vec::new(),
            authority: None,
            graph: false,
            graph_url: None,
            domain: None,
            authorization_server: None,
            users_api: false,
            trust_email_verified: false,
            traits: std::collections::BTreeMap::<String, OneOrMany>::new(),
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
                client_secret: Some(Secret::new(sink_secret)),
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
        });
        configure_identify_api(&mut base, &issuer, &api_key);
    }
    base.validate()?;
    Ok((base, idp))
}

/// Point the built-in Identify API at the development provider's tokens and the generated key
/// (unless the configuration already has an `[identify_api]`).
fn configure_identify_api(settings: &mut Settings, issuer: &Url, api_key: &str) {
    if settings.identify_api.is_some() {
        return;
    }
    settings.identify_api = Some(crate::identify_api::IdentifyApiSettings {
        token_issuer: Some(issuer.clone()),
        token_audience: Some(crate::dev_idp::DEFAULT_API_AUDIENCE.to_string()),
        api_key_hashes: vec![hex::encode(Sha256::digest(api_key.as_bytes()))],
        ..Default::default()
    });
}

fn random_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

/// The start-up banner: what this is, where to go, and that it is not for production.
pub fn banner(settings: &Settings) -> String {
    let url = settings.server.public_url.as_str().trim_end_matches('/');
    format!(
        "\n  identify-bridge dev: DEVELOPMENT MODE, not for production\n\
         \n    sign in      {url}/login\n    your profile {url}/me\n    dashboard    {url}/admin\n    dev provider {url}/dev-idp/.well-known/openid-configuration\n    database     {}\n\n  The development provider signs in anyone who types a name. It listens on loopback only.\n",
        redact_db(settings.database.url.expose())
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
