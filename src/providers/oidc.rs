//! The generic authorization-code flow: authorize URL (PKCE S256, state, nonce), code exchange
//! and refresh (with the client authentication of [`super::client_auth`]), the ID token
//! verified by [`super::verify`], userinfo with the subject check, and the merged claims.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreErrorResponseType};
use openidconnect::{
    AccessToken, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse,
};
use serde_json::{Map, Value};
use tracing::Instrument;
use url::Url;

use super::client_auth::token_auth_method;
use super::verify::ExtIdToken;
/// The claims type, where the dev provider and tests have always found it.
pub use super::verify::ExtraClaims;
use super::{Discovered, Metadata, Provider, ProviderError, Stage};
use crate::config::TokenAuthMethod;

/// The client as built from discovery: authorization endpoint set, token and userinfo
/// endpoints as the metadata says.
pub type OidcClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// Options of an authorization request.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuthOptions<'a> {
    /// The person's `login_hint`, already checked.
    pub login_hint: Option<&'a str>,
    /// The person's `prompt` (`login`, `consent`, `select_account`), already checked.
    pub prompt: Option<&'a str>,
    /// Also ask for a refresh token, as the kind needs (`offline_access`, or Google's
    /// `access_type=offline`): when sessions are re-validated (`session.revalidate_secs` > 0)
    /// and the provider's `refresh_tokens` is on ([`Provider::asks_refresh_token`]).
    pub offline: bool,
}
/// Claims about the token itself, not the person: userinfo never overrides them.
const TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "azp",
    "at_hash",
    "c_hash",
    "auth_time",
    "jti",
];
/// Userinfo bodies larger than this are refused.
const MAX_USERINFO_BYTES: usize = 256 * 1024;

/// What `begin_login` hands back: where to send the browser and what to remember.
pub struct AuthorizationRequest {
    pub url: Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A verified sign-in: who the provider says this is, and what else it says.
#[derive(Debug, Clone)]
pub struct VerifiedLogin {
    /// The token's `iss` (tenant-specific for Microsoft).
    pub issuer: String,
    /// The ID token `sub`.
    pub subject: String,
    /// The stable account key at this issuer: Microsoft `oid` when present, else `sub`.
    pub account_key: String,
    /// ID-token claims merged with userinfo (userinfo wins for profile claims).
    pub claims: Map<String, Value>,
    /// Kept only for calls made during this sign-in (Graph); never stored or logged.
    pub access_token: AccessToken,
    /// What the session keeps, sealed (`session::SessionTokens`); never logged.
    pub session_tokens: crate::session::SessionTokens,
}

impl Provider {
    /// The OAuth client for this provider's metadata. Built once per discovery (and key
    /// refetch) and kept in [`super::Discovered`]: building it clones the whole metadata document,
    /// which is wasted work on every sign-in.
    pub(super) fn build_client(&self, metadata: &Metadata) -> OidcClient {
        let method = token_auth_method(self.settings.token_auth_method, metadata);
        // With private_key_jwt there is no secret: the client id goes in the form body, next
        // to the assertion each request adds (`client_auth_params`).
        let secret = match method {
            TokenAuthMethod::PrivateKeyJwt => None,
            _ => self
                .settings
                .secret()
                .map(|s| ClientSecret::new(s.expose().to_string())),
        };
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            secret,
        )
        .set_redirect_uri(RedirectUrl::from_url(self.redirect_url.clone()));
        match method {
            TokenAuthMethod::ClientSecretPost | TokenAuthMethod::PrivateKeyJwt => {
                client.set_auth_type(AuthType::RequestBody)
            }
            TokenAuthMethod::ClientSecretBasic => client.set_auth_type(AuthType::BasicAuth),
        }
    }

    /// Build the authorization URL with PKCE S256, a fresh state and nonce, the person's
    /// `login_hint` and `prompt` (already checked) when given, and with `offline` what this
    /// kind needs to issue a refresh token (see [`super::Quirks::extras`]).
    pub fn authorization_request(
        &self,
        options: &AuthOptions<'_>,
    ) -> Result<AuthorizationRequest, ProviderError> {
        let d = self.discovered()?;
        let client = &d.client;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        let extras = self.extras(&d, options.offline);
        for scope in self.asked_scopes(&extras) {
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope));
            }
        }
        // The kind's parameters; a `prompt` of its own joins the person's.
        let mut prompt: Vec<&str> = options.prompt.unwrap_or_default().split(' ').collect();
        prompt.retain(|p| !p.is_empty());
        for (name, value) in &extras.params {
            match *name {
                "prompt" => {
                    for v in value.split(' ') {
                        if !prompt.contains(&v) {
                            prompt.push(v);
                        }
                    }
                }
                _ => request = request.add_extra_param(*name, *value),
            }
        }
        if let Some(hint) = options.login_hint {
            request = request.add_extra_param("login_hint", hint.to_string());
        }
        if !prompt.is_empty() {
            request = request.add_extra_param("prompt", prompt.join(" "));
        }
        let (url, state, nonce) = request.url();
        Ok(AuthorizationRequest {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Whether sign-ins ask this provider for a refresh token: while sessions are re-validated
    /// (`revalidated`), unless its `refresh_tokens = false`.
    pub fn asks_refresh_token(&self, revalidated: bool) -> bool {
        revalidated && self.settings.refresh_tokens
    }

    /// Whether an authorization request asks for the `offline_access` scope (the kind's, or
    /// configured in `scopes`), which a provider may refuse with `invalid_scope`.
    pub fn asks_offline_access(&self, revalidated: bool) -> bool {
        let Ok(d) = self.discovered() else {
            return false;
        };
        let extras = self.extras(&d, self.asks_refresh_token(revalidated));
        self.asked_scopes(&extras)
            .iter()
            .any(|s| s == super::quirks::OFFLINE_ACCESS)
    }

    /// What this kind adds to an authorization request, given the discovery document.
    fn extras(&self, d: &Discovered, offline: bool) -> super::Extras {
        let supported = d.metadata.scopes_supported().map(Vec::as_slice);
        self.quirks().extras(offline, supported)
    }

    /// The scopes an authorization request asks for: the configured ones, then the kind's.
    fn asked_scopes(&self, extras: &super::Extras) -> Vec<String> {
        let mut scopes = self.settings.scopes.clone();
        for scope in &extras.scopes {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_string());
            }
        }
        scopes
    }

    /// Refresh a session's tokens at the token endpoint, with what this kind's refresh needs
    /// ([`super::Quirks::refresh`]); the answer is capped like every token answer.
    #[tracing::instrument(skip_all, fields(provider = %self.name()))]
    pub async fn refresh(&self, refresh_token: &str) -> Result<Refreshed, RefreshError> {
        let d = self.discovered().map_err(RefreshError::Failed)?;
        // A refresh token is only held when the sign-in asked for one.
        let asked = self.asked_scopes(&self.extras(&d, true));
        let params = self.quirks().refresh(&asked);
        let token = RefreshToken::new(refresh_token.to_string());
        let mut request = d
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| {
                RefreshError::Failed(ProviderError::InvalidResponse(Stage::Token, e.to_string()))
            })?
            .add_scopes(params.scopes.into_iter().map(Scope::new));
        // private_key_jwt: a fresh client assertion for this request too.
        for (name, value) in self.client_auth_params(&d).map_err(RefreshError::Failed)? {
            request = request.add_extra_param(name, value);
        }
        let started = std::time::Instant::now();
        let response = request
            .request_async(&self.token_http())
            .instrument(
                tracing::info_span!("provider_call", provider = %self.name(), stage = "refresh"),
            )
            .await;
        crate::metrics::provider_call(self.name(), "refresh", started.elapsed().as_secs_f64());
        match response {
            Ok(response) => Ok(Refreshed {
                access_token: response.access_token().secret().clone(),
                refresh_token: response.refresh_token().map(|t| t.secret().clone()),
                expires_in: response.expires_in(),
            }),
            Err(RequestTokenError::ServerResponse(r))
                if matches!(r.error(), CoreErrorResponseType::InvalidGrant) =>
            {
                Err(RefreshError::InvalidGrant)
            }
            Err(e) => Err(RefreshError::Failed(token_error(e))),
        }
    }

    /// Userinfo with `access_token`, for a re-validation: the account's claims (untrusted:
    /// their `sub` not yet compared), `Ok(None)` when the provider has no userinfo endpoint.
    #[tracing::instrument(skip_all, fields(provider = %self.name()))]
    pub async fn userinfo(
        &self,
        access_token: &str,
    ) -> Result<Option<Map<String, Value>>, UserinfoError> {
        let d = self.discovered().map_err(UserinfoError::Failed)?;
        let Some(endpoint) = d.metadata.userinfo_endpoint() else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        let claims = self.get_userinfo(endpoint.url(), access_token).await;
        crate::metrics::provider_call(self.name(), "userinfo", started.elapsed().as_secs_f64());
        claims.map(Some)
    }

    /// RFC 9207: when the response carries `iss`, it must be this provider's issuer.
    pub fn check_response_issuer(&self, iss: Option<&str>) -> Result<(), ProviderError> {
        let d = self.discovered()?;
        let Some(iss) = iss else {
            if d.metadata
                .additional_metadata()
                .authorization_response_iss_parameter_supported
                == Some(true)
            {
                return Err(ProviderError::InvalidResponse(
                    Stage::Token,
                    "the authorization response lacks the iss parameter the provider promises"
                        .into(),
                ));
            }
            return Ok(());
        };
        let ok = self
            .quirks()
            .accepts_response_issuer(d.metadata.issuer().as_str(), iss);
        if ok {
            Ok(())
        } else {
            Err(ProviderError::InvalidResponse(
                Stage::Token,
                "the authorization response comes from a different issuer (iss mismatch)".into(),
            ))
        }
    }

    /// Exchange the code, verify the ID token, call userinfo and merge the claims.
    #[tracing::instrument(skip_all, fields(provider = %self.name()))]
    pub async fn finish_login(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
    ) -> Result<VerifiedLogin, ProviderError> {
        let d = self.discovered()?;
        let client = &d.client;
        let mut request = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ProviderError::InvalidResponse(Stage::Token, e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier));
        for (name, value) in self.client_auth_params(&d)? {
            request = request.add_extra_param(name, value);
        }
        let started = std::time::Instant::now();
        let response = request
            .request_async(&self.token_http())
            .instrument(
                tracing::info_span!("provider_call", provider = %self.name(), stage = "token"),
            )
            .await
            .map_err(token_error);
        crate::metrics::provider_call(self.name(), "token", started.elapsed().as_secs_f64());
        let response = response?;
        let id_token = response.id_token().ok_or_else(|| {
            ProviderError::InvalidResponse(Stage::Token, "no id_token in the token response".into())
        })?;
        // Re-read the same signed token with our claims type so every claim is kept.
        let id_token: ExtIdToken = id_token
            .to_string()
            .parse()
            .map_err(|e| ProviderError::InvalidIdToken(format!("malformed: {e}")))?;
        let access_token = response.access_token().clone();
        let session_tokens = crate::session::SessionTokens {
            id_token: Some(id_token.to_string()),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            access_token: Some(access_token.secret().clone()),
            access_token_expires_at: response
                .expires_in()
                .map(|d| chrono::Utc::now().timestamp() + d.as_secs() as i64),
        };
        let nonce = Nonce::new(nonce);
        let claims = self
            .verified_claims(&d, &id_token, &nonce, &access_token)
            .await?;

        let subject = claims.subject().as_str().to_string();
        let issuer = claims.issuer().as_str().to_string();
        let mut merged = match serde_json::to_value(&claims) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        if let Some(endpoint) = d.metadata.userinfo_endpoint() {
            let started = std::time::Instant::now();
            let userinfo = self
                .fetch_userinfo(endpoint.url(), &access_token, &subject)
                .instrument(tracing::info_span!("provider_call", provider = %self.name(), stage = "userinfo"))
                .await;
            crate::metrics::provider_call(self.name(), "userinfo", started.elapsed().as_secs_f64());
            let userinfo = userinfo?;
            merge_userinfo(&mut merged, userinfo);
        }
        let account_key = self
            .quirks()
            .account(&merged, &super::ProviderData::default())
            .key;
        Ok(VerifiedLogin {
            issuer,
            subject,
            account_key,
            claims: merged,
            access_token,
            session_tokens,
        })
    }

    /// GET userinfo with the access token; its `sub` must be the ID token's.
    async fn fetch_userinfo(
        &self,
        endpoint: &Url,
        access_token: &AccessToken,
        subject: &str,
    ) -> Result<Map<String, Value>, ProviderError> {
        let claims = self
            .get_userinfo(endpoint, access_token.secret())
            .await
            .map_err(ProviderError::from)?;
        match claims.get("sub").and_then(Value::as_str) {
            Some(sub) if sub == subject => Ok(claims),
            _ => Err(ProviderError::SubjectMismatch),
        }
    }

    /// GET userinfo with the access token: a JSON object of at most [`MAX_USERINFO_BYTES`].
    async fn get_userinfo(
        &self,
        endpoint: &Url,
        access_token: &str,
    ) -> Result<Map<String, Value>, UserinfoError> {
        let failed =
            |e: &reqwest::Error| UserinfoError::Failed(super::transport_error(Stage::Userinfo, e));
        let response = self
            .http()
            .get(endpoint.clone())
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .headers(crate::telemetry::trace_headers())
            .send()
            .await
            .map_err(|e| failed(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(UserinfoError::Refused(status));
        }
        let is_jwt = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/jwt"));
        if is_jwt {
            return Err(UserinfoError::Signed);
        }
        let body = super::fetch::read_capped(response, MAX_USERINFO_BYTES)
            .await
            .map_err(|e| match e {
                super::fetch::BodyError::TooLarge => {
                    UserinfoError::Failed(ProviderError::InvalidResponse(
                        Stage::Userinfo,
                        format!("response larger than {MAX_USERINFO_BYTES} bytes"),
                    ))
                }
                super::fetch::BodyError::Transport(e) => failed(&e),
            })?;
        serde_json::from_slice(&body).map_err(|e| {
            UserinfoError::Failed(ProviderError::InvalidResponse(
                Stage::Userinfo,
                format!("not a JSON object: {e}"),
            ))
        })
    }
}

/// A refresh the provider answered. Tokens never logged.
pub struct Refreshed {
    pub access_token: String,
    /// A provider that rotates refresh tokens sends a new one; `None`: keep the old one.
    pub refresh_token: Option<String>,
    pub expires_in: Option<std::time::Duration>,
}

/// Why a refresh gave no tokens.
#[derive(Debug)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`): revoked, expired, or the
    /// account is gone.
    InvalidGrant,
    /// Anything else: the provider could not be asked, or answered something unusable.
    Failed(ProviderError),
}

/// Why userinfo gave no claims.
#[derive(Debug)]
pub enum UserinfoError {
    /// The provider answered this non-2xx status (401 or 403: the token was refused).
    Refused(reqwest::StatusCode),
    /// The provider answered a signed (`application/jwt`) userinfo, which is not read.
    Signed,
    /// The provider could not be asked, or answered something unusable (too large, not JSON).
    Failed(ProviderError),
}

impl From<UserinfoError> for ProviderError {
    fn from(e: UserinfoError) -> Self {
        match e {
            UserinfoError::Refused(status) => {
                ProviderError::Rejected(Stage::Userinfo, format!("HTTP {status}"))
            }
            UserinfoError::Signed => ProviderError::InvalidResponse(
                Stage::Userinfo,
                "signed (application/jwt) userinfo responses are not supported; configure the provider to answer JSON".into(),
            ),
            UserinfoError::Failed(e) => e,
        }
    }
}

/// Userinfo wins for profile claims; claims about the token stay the ID token's.
pub fn merge_userinfo(merged: &mut Map<String, Value>, userinfo: Map<String, Value>) {
    for (key, value) in userinfo {
        if TOKEN_CLAIMS.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        merged.insert(key, value);
    }
}

fn token_error<RE: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    e: RequestTokenError<openidconnect::HttpClientError<RE>, T>,
) -> ProviderError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            // The error code (`invalid_grant`, …) is safe to show; the description is the provider's text.
            ProviderError::Rejected(Stage::Token, r.to_string())
        }
        RequestTokenError::Request(openidconnect::HttpClientError::Reqwest(inner)) => {
            let inner: &dyn std::error::Error = inner.as_ref();
            match inner.downcast_ref::<reqwest::Error>() {
                Some(re) => super::transport_error(Stage::Token, re),
                None => ProviderError::Unreachable(Stage::Token, inner.to_string()),
            }
        }
        RequestTokenError::Request(openidconnect::HttpClientError::Other(message))
            if message.starts_with(super::TOO_LARGE) =>
        {
            ProviderError::InvalidResponse(Stage::Token, message)
        }
        RequestTokenError::Request(other) => {
            ProviderError::Unreachable(Stage::Token, other.to_string())
        }
        RequestTokenError::Parse(e, _) => {
            ProviderError::InvalidResponse(Stage::Token, e.to_string())
        }
        RequestTokenError::Other(s) => ProviderError::InvalidResponse(Stage::Token, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_overrides_profile_claims_but_not_token_claims() {
        let mut merged: Map<String, Value> = serde_json::from_value(
            serde_json::json!({"sub": "a", "iss": "x", "name": "Old", "email": "e@x"}),
        )
        .unwrap();
        let userinfo = serde_json::from_value(serde_json::json!({"sub": "b", "iss": "y", "name": "New", "email": null, "title": "CTO"})).unwrap();
        merge_userinfo(&mut merged, userinfo);
        assert_eq!(merged["sub"], "a");
        assert_eq!(merged["iss"], "x");
        assert_eq!(merged["name"], "New");
        assert_eq!(merged["email"], "e@x");
        assert_eq!(merged["title"], "CTO");
    }
}
