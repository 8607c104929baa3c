//! `private_key_jwt`: the provider's signing key (and, for Microsoft, its certificate's
//! thumbprint), read from files and parsed once at load time. The key never reaches `Debug`,
//! serialization or a message.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

/// Why a key file was refused (never what it holds).
const UNUSABLE_KEY: &str = "is not a PEM private key this bridge can sign with: an RSA key of \
     2048 bits or more (PKCS#1 or PKCS#8), or a P-256 key in PKCS#8 (`BEGIN PRIVATE KEY`)";

/// A private key that signs client assertions, with what their header names.
#[derive(Clone)]
pub struct ClientKey {
    key: Arc<EncodingKey>,
    alg: Algorithm,
    /// `kid`: the key id registered with the provider.
    key_id: Option<String>,
    /// `x5t#S256`: the base64url SHA-256 thumbprint of the certificate's DER.
    thumbprint: Option<String>,
}

impl ClientKey {
    /// Read and check the key (RSA → RS256, P-256 in PKCS#8 → ES256) and the certificate. An
    /// error says which file and what is wrong with it, never what it holds.
    pub fn load_files(
        key_file: &Path,
        key_id: Option<&str>,
        certificate_file: Option<&Path>,
    ) -> Result<ClientKey, (KeyPart, String)> {
        let pem = std::fs::read(key_file).map_err(|e| {
            (
                KeyPart::Key,
                format!("cannot read {}: {e}", key_file.display()),
            )
        })?;
        let mut key = ClientKey::from_pem(&pem)
            .map_err(|e| (KeyPart::Key, format!("{} {e}", key_file.display())))?;
        key.key_id = key_id.map(str::to_owned);
        if let Some(file) = certificate_file {
            let pem = std::fs::read(file).map_err(|e| {
                (
                    KeyPart::Certificate,
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            let thumbprint = certificate_thumbprint(&pem)
                .map_err(|e| (KeyPart::Certificate, format!("{} {e}", file.display())))?;
            key.thumbprint = Some(thumbprint);
        }
        Ok(key)
    }

    /// A PEM private key: RSA (PKCS#1 or PKCS#8) signs with RS256, P-256 (PKCS#8) with ES256.
    /// Checked by signing once, so a key the signer cannot use fails here, not at sign-in.
    pub fn from_pem(pem: &[u8]) -> Result<ClientKey, String> {
        let candidates = [
            (EncodingKey::from_rsa_pem(pem), Algorithm::RS256),
            (EncodingKey::from_ec_pem(pem), Algorithm::ES256),
        ];
        for (key, alg) in candidates {
            let Ok(key) = key else { continue };
            if jsonwebtoken::encode(&Header::new(alg), &serde_json::json!({}), &key).is_ok() {
                return Ok(ClientKey {
                    key: Arc::new(key),
                    alg,
                    key_id: None,
                    thumbprint: None,
                });
            }
        }
        Err(UNUSABLE_KEY.into())
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The certificate's `x5t#S256` thumbprint, when a certificate is configured.
    pub fn thumbprint(&self) -> Option<&str> {
        self.thumbprint.as_deref()
    }

    /// The key, for signing.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }
}

/// Which file a [`ClientKey::load`] error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart {
    Key,
    Certificate,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("alg", &self.alg)
            .field("key_id", &self.key_id)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// `x5t#S256` (RFC 7515 §4.1.8): the base64url (unpadded) SHA-256 of the certificate's DER.
pub fn certificate_thumbprint(pem: &[u8]) -> Result<String, String> {
    let parsed = pem::parse(pem).map_err(|e| format!("is not a PEM certificate: {e}"))?;
    if parsed.tag() != "CERTIFICATE" {
        return Err(format!(
            "is not a PEM certificate (`BEGIN CERTIFICATE`), it holds `{}`",
            parsed.tag()
        ));
    }
    let digest = Sha256::digest(parsed.contents());
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}
