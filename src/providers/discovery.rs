//! Discovery: the provider's metadata (`{issuer}/.well-known/openid-configuration`), loaded
//! with its keys, kept fresh in the background with backoff, and the reachability `/readyz`
//! reports. The issuer check is the kind's ([`super::Quirks::accepts_discovered_issuer`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, ProviderMetadata};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::{
    client_auth, oidc, transport_error, Provider, ProviderError, Stage, TENANT_PLACEHOLDER,
};

/// Discovery fields the core metadata type leaves out.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

/// Provider metadata with the extra fields above.
pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Discovery documents and key sets larger than this are refused.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Discovery is refreshed this often once loaded (keys rotate; endpoints rarely move).
const METADATA_REFRESH: Duration = Duration::from_secs(12 * 3600);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Loaded metadata for one provider.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub metadata: Metadata,
    /// Microsoft `common`/`organizations`: the issuer holds `{tenantid}`.
    pub issuer_template: Option<String>,
    /// The OAuth client built from `metadata` (see [`Provider::discovered_from`]).
    pub client: oidc::OidcClient,
}

impl Provider {
    /// The loaded metadata, or `NotReady`.
    pub fn discovered(&self) -> Result<Arc<Discovered>, ProviderError> {
        self.discovered
            .read()
            .expect("provider lock poisoned")
            .clone()
            .ok_or_else(|| ProviderError::NotReady(self.name().to_string()))
    }

    /// Metadata loaded and the provider answering its last check.
    pub fn is_ready(&self) -> bool {
        self.is_reachable() && self.has_metadata()
    }

    /// Metadata loaded (sign-ins can start).
    pub fn has_metadata(&self) -> bool {
        self.discovered
            .read()
            .expect("provider lock poisoned")
            .is_some()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .read()
            .expect("provider lock poisoned")
            .clone()
    }

    /// Fetch the discovery document and keys once.
    #[tracing::instrument(skip_all, fields(provider = %self.name()))]
    pub async fn discover(&self) -> Result<(), ProviderError> {
        let result = self.fetch_metadata().await;
        match &result {
            Ok(d) => {
                *self.discovered.write().expect("provider lock poisoned") =
                    Some(Arc::new(d.clone()));
                *self.last_error.write().expect("provider lock poisoned") = None;
                tracing::info!(issuer = %d.metadata.issuer().as_str(), "provider metadata loaded");
                if let Some(warning) =
                    client_auth::unlisted_auth_method(self.settings.token_auth_method, &d.metadata)
                {
                    tracing::warn!(provider = %self.name(), "{warning}");
                }
            }
            Err(e) => {
                *self.last_error.write().expect("provider lock poisoned") = Some(e.to_string());
                tracing::warn!(error = %e, "provider discovery failed");
            }
        }
        result.map(|_| ())
    }

    async fn fetch_metadata(&self) -> Result<Discovered, ProviderError> {
        let url = format!("{}/.well-known/openid-configuration", self.discovery_base);
        // Fetched directly rather than with `discover_async`: Microsoft's templated and
        // domain-named tenants publish an issuer that differs from the URL, which that
        // function rejects. The issuer check moves to ID-token verification, where it stays exact.
        let metadata: Metadata = self
            .get_json(&url, Stage::Discovery, "a discovery document")
            .await?;
        let issuer = metadata.issuer().as_str().to_string();
        if !self.quirks.accepts_discovered_issuer(&issuer) {
            return Err(ProviderError::InvalidResponse(
                Stage::Discovery,
                format!(
                    "issuer {issuer:?} does not match the configured {:?}",
                    self.discovery_base
                ),
            ));
        }
        let issuer_template = issuer.contains(TENANT_PLACEHOLDER).then(|| issuer.clone());
        let jwks = self.fetch_jwks(&metadata).await?;
        Ok(self.discovered_from(metadata.set_jwks(jwks), issuer_template))
    }

    /// Loaded metadata with the client built from it, so sign-ins share one client.
    pub(super) fn discovered_from(
        &self,
        metadata: Metadata,
        issuer_template: Option<String>,
    ) -> Discovered {
        Discovered {
            client: self.build_client(&metadata),
            metadata,
            issuer_template,
        }
    }

    /// GET a JSON document from the provider: 2xx only, at most [`MAX_DOCUMENT_BYTES`].
    #[tracing::instrument(name = "provider_call", skip_all, fields(provider = %self.name(), stage = ?stage))]
    pub(super) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        stage: Stage,
        what: &str,
    ) -> Result<T, ProviderError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .headers(crate::telemetry::trace_headers())
            .send()
            .await
            .map_err(|e| transport_error(stage, &e))?;
        if !response.status().is_success() {
            return Err(ProviderError::InvalidResponse(
                stage,
                format!("HTTP {} from {url}", response.status()),
            ));
        }
        let body = super::fetch::read_capped(response, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| match e {
                super::fetch::BodyError::TooLarge => ProviderError::InvalidResponse(
                    stage,
                    format!("{url} answered more than {MAX_DOCUMENT_BYTES} bytes"),
                ),
                super::fetch::BodyError::Transport(e) => transport_error(stage, &e),
            })?;
        serde_json::from_slice(&body)
            .map_err(|e| ProviderError::InvalidResponse(stage, format!("not {what}: {e}")))
    }

    /// Keep trying discovery with exponential backoff until it works, then refresh it
    /// periodically, until `stop` fires.
    pub async fn keep_discovered(self: Arc<Self>, check_every: Duration, stop: CancellationToken) {
        let mut delay = Duration::from_secs(1);
        let mut loaded_at: Option<Instant> = None;
        loop {
            let due_for_refresh = loaded_at.is_none_or(|t| t.elapsed() >= METADATA_REFRESH);
            let ok = if due_for_refresh || !self.is_reachable() {
                // Load (or reload) discovery and keys.
                let ok = self.discover().await.is_ok();
                if ok {
                    loaded_at = Some(Instant::now());
                }
                ok
            } else {
                // Loaded: only check that the provider still answers, for /readyz.
                self.probe().await
            };
            self.reachable
                .store(ok, std::sync::atomic::Ordering::Relaxed);
            let wait = if ok {
                delay = Duration::from_secs(1);
                check_every
            } else {
                let wait = delay;
                delay = (delay * 2).min(RETRY_MAX);
                wait
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Whether the last discovery or probe succeeded.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// GET the discovery document and report whether the provider answered 2xx.
    async fn probe(&self) -> bool {
        let url = format!("{}/.well-known/openid-configuration", self.discovery_base);
        match self.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                self.set_error(format!("discovery answered HTTP {}", r.status()));
                false
            }
            Err(e) => {
                self.set_error(transport_error(Stage::Discovery, &e).to_string());
                false
            }
        }
    }

    fn set_error(&self, e: String) {
        tracing::warn!(provider = %self.name(), error = %e, "provider check failed");
        *self.last_error.write().expect("provider lock poisoned") = Some(e);
    }
}
