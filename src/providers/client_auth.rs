//! How the bridge authenticates as a provider's client at its token endpoint (code exchange,
//! refresh): `client_secret_basic`, `client_secret_post`, or `private_key_jwt` — an RFC 7523
//! client assertion signed with the configured key, fresh for each request.

use jsonwebtoken::Header;
use openidconnect::core::CoreClientAuthMethod;
use serde::Serialize;

use super::{Discovered, Metadata, Provider, ProviderError, Stage};
use crate::config::{ClientKey, TokenAuthMethod};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An assertion expires this long after it is made: it is sent at once and used once, so a
/// copy is worthless almost immediately; a minute leaves room for modest clock skew.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

/// The claims of a client assertion (RFC 7523 §3; OpenID Connect Core §9).
#[derive(Debug, Serialize)]
pub struct AssertionClaims<'a> {
    /// The client id, as issuer and subject.
    pub iss: &'a str,
    pub sub: &'a str,
    /// The token endpoint's URL, as Okta and Microsoft require (oidc-provider accepts it too).
    pub aud: &'a str,
    /// Unique per assertion: providers refuse a replayed one.
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

impl<'a> AssertionClaims<'a> {
    pub fn new(client_id: &'a str, token_endpoint: &'a str, now: i64) -> Self {
        AssertionClaims {
            iss: client_id,
            sub: client_id,
            aud: token_endpoint,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            nbf: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        }
    }
}

/// The assertion's header: the key's algorithm, `typ: JWT`, `kid` when configured and
/// `x5t#S256` when a certificate is (Microsoft finds a certificate credential by it).
pub fn assertion_header(key: &ClientKey) -> Header {
    let mut header = Header::new(key.algorithm());
    header.typ = Some("JWT".into());
    header.kid = key.key_id().map(str::to_owned);
    header.x5t_s256 = key.thumbprint().map(str::to_owned);
    header
}

/// A signed client assertion for `client_id` at `token_endpoint`.
pub fn client_assertion(
    key: &ClientKey,
    client_id: &str,
    token_endpoint: &str,
    now: i64,
) -> Result<String, ProviderError> {
    let claims = AssertionClaims::new(client_id, token_endpoint, now);
    jsonwebtoken::encode(&assertion_header(key), &claims, key.encoding_key()).map_err(|e| {
        // The error names what failed (the key's kind), never the key.
        ProviderError::InvalidResponse(
            Stage::Token,
            format!("cannot sign the client assertion: {e}"),
        )
    })
}

/// The token endpoint's client authentication: the configured one, else from discovery
/// (`client_secret_basic` when listed or when the list is absent, its default per OpenID
/// Discovery; else `client_secret_post`). `private_key_jwt` is never chosen unasked: it needs
/// a key.
pub fn token_auth_method(
    configured: Option<TokenAuthMethod>,
    metadata: &Metadata,
) -> TokenAuthMethod {
    if let Some(method) = configured {
        return method;
    }
    match metadata.token_endpoint_auth_methods_supported() {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            TokenAuthMethod::ClientSecretPost
        }
        _ => TokenAuthMethod::ClientSecretBasic,
    }
}

/// A warning when the configured method is not among those the discovery document lists
/// (`None` when it is, or when the document lists none).
pub fn unlisted_auth_method(
    configured: Option<TokenAuthMethod>,
    metadata: &Metadata,
) -> Option<String> {
    let configured = configured?;
    let listed = metadata.token_endpoint_auth_methods_supported()?;
    let wanted = match configured {
        TokenAuthMethod::ClientSecretBasic => CoreClientAuthMethod::ClientSecretBasic,
        TokenAuthMethod::ClientSecretPost => CoreClientAuthMethod::ClientSecretPost,
        TokenAuthMethod::PrivateKeyJwt => CoreClientAuthMethod::PrivateKeyJwt,
    };
    if listed.contains(&wanted) {
        return None;
    }
    let names: Vec<&str> = listed.iter().map(|m| m.as_ref()).collect();
    Some(format!(
        "token_auth_method = \"{}\" is configured, but the provider's discovery document lists \
         only {} in token_endpoint_auth_methods_supported: its token endpoint will likely \
         refuse the sign-in",
        configured.as_str(),
        names.join(", ")
    ))
}

impl Provider {
    /// The form parameters a token request adds for this client's authentication: with
    /// `private_key_jwt`, a fresh assertion for the discovered token endpoint; otherwise none
    /// (the secret goes as the OAuth client was built: Basic header or form body).
    pub(crate) fn client_auth_params(
        &self,
        d: &Discovered,
    ) -> Result<Vec<(&'static str, String)>, ProviderError> {
        if self.settings.token_auth_method != Some(TokenAuthMethod::PrivateKeyJwt) {
            return Ok(Vec::new());
        }
        // Loaded with the configuration (`Settings::load`); a hand-built one may lack it.
        let key = self.settings.client_key.as_ref().ok_or_else(|| {
            ProviderError::InvalidResponse(
                Stage::Token,
                "private_key_jwt is configured but no private key was loaded".into(),
            )
        })?;
        let endpoint = d.metadata.token_endpoint().ok_or_else(|| {
            ProviderError::InvalidResponse(Stage::Discovery, "no token_endpoint".into())
        })?;
        let assertion = client_assertion(
            key,
            &self.settings.client_id,
            endpoint.as_str(),
            chrono::Utc::now().timestamp(),
        )?;
        Ok(vec![
            ("client_assertion_type", ASSERTION_TYPE.to_owned()),
            ("client_assertion", assertion),
        ])
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    const TOKEN_ENDPOINT: &str = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token";

    /// The assertion verified with the public key, for its header and claims.
    fn verified(assertion: &str, public_pem: &[u8], alg: Algorithm) -> (Header, serde_json::Value) {
        let key = match alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(public_pem).unwrap(),
            _ => DecodingKey::from_ec_pem(public_pem).unwrap(),
        };
        let mut validation = Validation::new(alg);
        validation.set_audience(&[TOKEN_ENDPOINT]);
        validation.set_issuer(&["client-1"]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "sub", "aud", "jti"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation).unwrap();
        (data.header, data.claims)
    }

    #[test]
    fn an_assertion_names_the_client_the_token_endpoint_and_expires_within_a_minute() {
        let key = ClientKey::from_pem(&fixture("client-key-rsa.pem")).unwrap();
        let now = chrono::Utc::now().timestamp();
        let first = client_assertion(&key, "client-1", TOKEN_ENDPOINT, now).unwrap();
        let (header, claims) =
            verified(&first, &fixture("client-key-rsa.pub.pem"), Algorithm::RS256);
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid, None);
        assert_eq!(header.x5t_s256, None);
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["aud"], TOKEN_ENDPOINT);
        assert_eq!(claims["iat"], now);
        assert_eq!(claims["nbf"], now);
        assert_eq!(claims["exp"], now + ASSERTION_LIFETIME_SECS);
        // A fresh jti each time: providers refuse a replayed assertion.
        let second = client_assertion(&key, "client-1", TOKEN_ENDPOINT, now).unwrap();
        let (_, again) = verified(
            &second,
            &fixture("client-key-rsa.pub.pem"),
            Algorithm::RS256,
        );
        assert_ne!(claims["jti"], again["jti"]);
        assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn a_p256_key_signs_with_es256() {
        let key = ClientKey::from_pem(&fixture("client-key-p256.pem")).unwrap();
        assert_eq!(key.algorithm(), Algorithm::ES256);
        let now = chrono::Utc::now().timestamp();
        let assertion = client_assertion(&key, "client-1", TOKEN_ENDPOINT, now).unwrap();
        let (header, _) = verified(
            &assertion,
            &fixture("client-key-p256.pub.pem"),
            Algorithm::ES256,
        );
        assert_eq!(header.alg, Algorithm::ES256);
    }

    #[test]
    fn the_x5t_s256_header_is_the_certificates_sha256_thumbprint_in_base64url() {
        // Computed by openssl (tests/fixtures/README.md), not by the code under test.
        let expected = "jYQL_xz2GuxUtJWdl7Vt2439sx3kN-FUtyaRbRdo1fE";
        assert_eq!(
            crate::config::certificate_thumbprint(&fixture("client-cert-rsa.pem")).unwrap(),
            expected
        );
        let dir = env!("CARGO_MANIFEST_DIR");
        let key = ClientKey::load_files(
            std::path::Path::new(&format!("{dir}/tests/fixtures/client-key-rsa.pem")),
            Some("cert-1"),
            Some(std::path::Path::new(&format!(
                "{dir}/tests/fixtures/client-cert-rsa.pem"
            ))),
        )
        .unwrap();
        let assertion = client_assertion(
            &key,
            "client-1",
            TOKEN_ENDPOINT,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
        let (header, _) = verified(
            &assertion,
            &fixture("client-key-rsa.pub.pem"),
            Algorithm::RS256,
        );
        assert_eq!(header.kid.as_deref(), Some("cert-1"));
        assert_eq!(header.x5t_s256.as_deref(), Some(expected));
        // The header's name on the wire is `x5t#S256`.
        let raw_header = assertion.split('.').next().unwrap();
        let raw_header = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            raw_header,
        )
        .unwrap();
        let raw_header: serde_json::Value = serde_json::from_slice(&raw_header).unwrap();
        assert_eq!(raw_header["x5t#S256"], expected);
    }

    #[test]
    fn a_key_that_cannot_sign_is_refused_without_showing_it() {
        for pem in [
            fixture("client-key-rsa.pub.pem"),
            fixture("client-cert-rsa.pem"),
            b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n".to_vec(),
            b"s3cret".to_vec(),
        ] {
            let e = ClientKey::from_pem(&pem).unwrap_err();
            assert!(e.contains("is not a PEM private key"), "{e}");
            assert!(!e.contains("bm90IGEga2V5") && !e.contains("s3cret"), "{e}");
        }
        let key = ClientKey::from_pem(&fixture("client-key-rsa.pem")).unwrap();
        assert!(!format!("{key:?}").contains("MII"), "{key:?}");
    }

    #[test]
    fn a_configured_method_the_discovery_document_does_not_list_is_named() {
        let metadata: Metadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.example.com",
            "authorization_endpoint": "https://idp.example.com/auth",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://idp.example.com/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }))
        .unwrap();
        assert_eq!(unlisted_auth_method(None, &metadata), None);
        assert_eq!(
            unlisted_auth_method(Some(TokenAuthMethod::ClientSecretPost), &metadata),
            None
        );
        let warning =
            unlisted_auth_method(Some(TokenAuthMethod::PrivateKeyJwt), &metadata).unwrap();
        assert!(
            warning.contains("\"private_key_jwt\"")
                && warning.contains("client_secret_basic, client_secret_post"),
            "{warning}"
        );
        // Never chosen from discovery alone: it needs a key.
        assert_eq!(
            token_auth_method(None, &metadata),
            TokenAuthMethod::ClientSecretBasic
        );
    }
}
