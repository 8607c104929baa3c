//! The key cache: each provider's signing keys (JWKS), fetched with discovery and fetched
//! again when a token names an unknown `kid` — at most once per
//! [`JWKS_REFRESH_MIN_INTERVAL`], whether the fetch works or fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::CoreJsonWebKey;
use openidconnect::JsonWebKeySet;

use super::{Metadata, Provider, ProviderError, Stage};

/// At most one JWKS refetch per provider in this interval, however many unknown `kid`s arrive.
pub const JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(30);

impl Provider {
    pub(super) async fn fetch_jwks(
        &self,
        metadata: &Metadata,
    ) -> Result<JsonWebKeySet<CoreJsonWebKey>, ProviderError> {
        self.get_json(metadata.jwks_uri().url().as_str(), Stage::Jwks, "a JWK set")
            .await
    }

    /// Fetch the keys again after a token named an unknown `kid`. Rate-limited: returns
    /// `false` without a request when the last refetch was under [`JWKS_REFRESH_MIN_INTERVAL`]
    /// ago (the fetch at discovery does not count, so a rotation right after start-up is seen).
    pub async fn refresh_jwks(&self) -> Result<bool, ProviderError> {
        {
            let mut last = self.last_jwks_fetch.lock().expect("provider lock poisoned");
            if last.is_some_and(|t| t.elapsed() < JWKS_REFRESH_MIN_INTERVAL) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let current = self.discovered()?;
        let jwks = self.fetch_jwks(&current.metadata).await?;
        let updated = self.discovered_from(
            current.metadata.clone().set_jwks(jwks),
            current.issuer_template.clone(),
        );
        *self.discovered.write().expect("provider lock poisoned") = Some(Arc::new(updated));
        tracing::info!(provider = %self.name(), "provider signing keys refetched");
        Ok(true)
    }
}
