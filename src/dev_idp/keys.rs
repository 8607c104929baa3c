//! The development provider's RSA signing key: kept as a PKCS#1 PEM file in the data directory
//! (created 0600 on first start), published as a JWKS, and used for ID tokens and the
//! client-credentials JWT access tokens.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// File name of the key inside the data directory.
pub const KEY_FILE: &str = "dev-idp-signing-key.pem";
const KEY_BITS: usize = 2048;
/// Characters of the RFC 7638 thumbprint used as `kid`.
const KID_LEN: usize = 16;

pub struct SigningKey {
    key: CoreRsaPrivateSigningKey,
    kid: String,
    jwks: Value,
}

impl SigningKey {
    /// Read `data_dir/dev-idp-signing-key.pem`, generating it on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<SigningKey> {
        let path = data_dir.join(KEY_FILE);
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => {
                warn_if_readable_by_others(&path);
                pem
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(data_dir, &path)?,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        Self::from_pem(&pem).with_context(|| format!("invalid signing key in {}", path.display()))
    }

    fn from_pem(pem: &str) -> anyhow::Result<SigningKey> {
        let rsa = RsaPrivateKey::from_pkcs1_pem(pem).context("not a PKCS#1 RSA private key")?;
        let kid = thumbprint(&rsa);
        let key = CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.clone())))
            .map_err(|e| anyhow::anyhow!(e))?;
        let mut jwk = serde_json::to_value(key.as_verification_key())?;
        jwk["alg"] = json!("RS256");
        Ok(SigningKey {
            key,
            kid,
            jwks: json!({ "keys": [jwk] }),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `{"keys":[…]}` with the public key.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The key as openidconnect wants it for `IdToken::new`.
    pub fn openid_key(&self) -> &CoreRsaPrivateSigningKey {
        &self.key
    }

    /// A compact RS256 JWS over `claims` with header `{alg, typ, kid}`.
    pub fn sign_jwt(&self, typ: &str, claims: &Value) -> anyhow::Result<String> {
        let header = json!({ "alg": "RS256", "typ": typ, "kid": self.kid });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let signature = self
            .key
            .sign(
                &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                input.as_bytes(),
            )
            .map_err(|e| anyhow::anyhow!("signing failed: {e}"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// Generate a key and write it with owner-only permissions. `create_new` so two processes
/// starting at once do not overwrite each other's key: the loser reads the winner's.
fn create_key_file(data_dir: &Path, path: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    tracing::info!(path = %path.display(), "generating the development provider's signing key");
    let rsa = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
        .context("RSA key generation failed")?;
    let pem = rsa
        .to_pkcs1_pem(LineEnding::LF)
        .context("PEM encoding failed")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(pem.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(pem.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the development provider's signing key is readable by other users; chmod 600 it");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url), shortened: stable for the key, changes with it.
fn thumbprint(rsa: &RsaPrivateKey) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(rsa.e().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(rsa.n().to_bytes_be())
    );
    let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    digest[..KID_LEN].to_string()
}
