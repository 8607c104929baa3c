//! The provider's signing keys for `openidconnect`'s ID-token verifier, with RSA signatures
//! checked by `ring` (as `jsonwebtoken` already does for the Identify API) instead of the `rsa`
//! crate, whose bignum arithmetic was about a third of the bridge's instructions per sign-in
//! (callgrind, 50 sign-ins). Everything else — key ids, key use, algorithms, `at_hash` hashing,
//! EC and HMAC keys — is `CoreJsonWebKey`'s, unchanged; the verifier is still the library's.

use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeySet, JsonWebKeyUse,
    JwsSigningAlgorithm, SignatureVerificationError,
};
use ring::signature::{self, RsaParameters, RsaPublicKeyComponents};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A JWK; RSA keys also keep their modulus and exponent for `ring`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingJwk {
    core: CoreJsonWebKey,
    rsa: Option<RsaKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

/// The same key set with `ring` verification.
pub fn key_set(keys: &JsonWebKeySet<CoreJsonWebKey>) -> JsonWebKeySet<RingJwk> {
    JsonWebKeySet::new(
        keys.keys()
            .iter()
            .filter_map(|key| serde_json::to_value(key).ok())
            .filter_map(|value| RingJwk::from_value(value).ok())
            .collect(),
    )
}

impl RingJwk {
    fn from_value(value: serde_json::Value) -> Result<RingJwk, serde_json::Error> {
        let rsa = match (value.get("kty"), value.get("n"), value.get("e")) {
            (Some(kty), Some(n), Some(e)) if kty == "RSA" => {
                let decode = |v: &serde_json::Value| {
                    use base64::Engine;
                    let text = v.as_str().unwrap_or_default();
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(text.trim_end_matches('='))
                        .ok()
                };
                decode(n).zip(decode(e)).map(|(n, e)| RsaKey { n, e })
            }
            _ => None,
        };
        Ok(RingJwk {
            core: serde_json::from_value(value)?,
            rsa,
        })
    }

    fn ring_algorithm(alg: &CoreJwsSigningAlgorithm) -> Option<&'static RsaParameters> {
        Some(match alg {
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
            CoreJwsSigningAlgorithm::RsaSsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
            CoreJwsSigningAlgorithm::RsaSsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }
}

impl Serialize for RingJwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RingJwk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        RingJwk::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl JsonWebKey for RingJwk {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.core.key_id()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.core.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.core.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.core.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        RingJwk {
            core: CoreJsonWebKey::new_symmetric(key),
            rsa: None,
        }
    }

    fn verify_signature(
        &self,
        signature_alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        let (Some(rsa), Some(algorithm)) = (&self.rsa, Self::ring_algorithm(signature_alg)) else {
            return self
                .core
                .verify_signature(signature_alg, message, signature);
        };
        // The library's key checks, as `CoreJsonWebKey::verify_signature` makes them.
        let invalid = |what: &str| Err(SignatureVerificationError::InvalidKey(what.to_string()));
        if self.key_use().is_some_and(|u| !u.allows_signature()) {
            return invalid("key usage not permitted for digital signatures");
        }
        if signature_alg.key_type().as_ref() != Some(self.key_type()) {
            return invalid("key type does not match signature algorithm");
        }
        match self.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => {}
            JsonWebKeyAlgorithm::Algorithm(alg) if alg == signature_alg => {}
            JsonWebKeyAlgorithm::Unsupported => {
                return invalid("key algorithm is not a signing algorithm")
            }
            JsonWebKeyAlgorithm::Algorithm(_) => return invalid("incompatible key algorithm"),
        }
        let key = RsaPublicKeyComponents {
            n: &rsa.n,
            e: &rsa.e,
        };
        // ring refuses moduli under 2048 bits, as current guidance does.
        key.verify(algorithm, message, signature).map_err(|_| {
            SignatureVerificationError::CryptoError("RSA signature verification failed".into())
        })
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.core.hash_bytes(bytes, alg)
    }
}

#[cfg(test)]
mod tests {
    use openidconnect::core::CoreRsaPrivateSigningKey;
    use openidconnect::PrivateSigningKey;

    use super::*;

    const KEY: &str = include_str!("../../tests/fixtures/test-signing-key.pem");
    const ATTACKER: &str = include_str!("../../tests/fixtures/attacker-signing-key.pem");

    fn signer(pem: &str) -> CoreRsaPrivateSigningKey {
        CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new("k1".into()))).unwrap()
    }

    fn ring_key(pem: &str) -> RingJwk {
        let set = JsonWebKeySet::new(vec![signer(pem).as_verification_key()]);
        key_set(&set).keys()[0].clone()
    }

    #[test]
    fn ring_accepts_what_the_rsa_crate_accepts_and_refuses_the_rest() {
        let message = b"header.payload";
        for alg in [
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        ] {
            let signature = signer(KEY).sign(&alg, message).unwrap();
            let core = signer(KEY).as_verification_key();
            let ring = ring_key(KEY);
            assert!(core.verify_signature(&alg, message, &signature).is_ok());
            assert!(
                ring.verify_signature(&alg, message, &signature).is_ok(),
                "{alg:?}"
            );
            assert!(ring
                .verify_signature(&alg, b"header.other", &signature)
                .is_err());
            assert!(ring_key(ATTACKER)
                .verify_signature(&alg, message, &signature)
                .is_err());
        }
    }

    #[test]
    fn the_key_set_keeps_ids_and_round_trips() {
        let ring = ring_key(KEY);
        assert_eq!(ring.key_id().map(|k| k.as_str()), Some("k1"));
        let again: RingJwk = serde_json::from_value(serde_json::to_value(&ring).unwrap()).unwrap();
        assert_eq!(again, ring);
    }
}
