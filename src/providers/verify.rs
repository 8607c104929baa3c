//! ID-token verification: the library's verifier (signature with the cached keys, `iss`,
//! `aud`, `exp`, `nonce`) plus the checks it lacks — `iat` not in the future, `azp`, `at_hash`
//! and the kind's issuer policy (Microsoft's tenants) — and one key refetch when the token
//! names an unknown `kid` (rotation).

use chrono::{Duration as ChronoDuration, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalClaims, ClaimsVerificationError, ClientId,
    ClientSecret, IdToken, IdTokenClaims, IdTokenVerifier, Nonce, SignatureVerificationError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{issuer_url, Discovered, Provider, ProviderError};

/// Every claim the token carries beyond the standard ones, kept as JSON.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct ExtraClaims(pub Map<String, Value>);
impl AdditionalClaims for ExtraClaims {}

pub(super) type ExtIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
pub(super) type ExtIdTokenClaims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;

/// ID tokens issued more than this far in the future are refused (clock skew allowance).
pub const MAX_IAT_FUTURE: ChronoDuration = ChronoDuration::minutes(5);

/// An ID token's `iat`: one in the future beyond the clock-skew allowance is refused; one in
/// the past is fine while the token is unexpired (the library checks `exp`; the nonce binds the
/// token to this sign-in, so its age proves nothing more).
pub fn check_issued_at(
    iat: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
) -> Result<(), String> {
    if iat > now + MAX_IAT_FUTURE {
        Err(format!(
            "issued {}s in the future",
            (iat - now).num_seconds()
        ))
    } else {
        Ok(())
    }
}

impl Provider {
    /// The verified claims of `token`; a token signed with a key the cache does not know makes
    /// the keys be fetched again (rate-limited, see [`super::keys`]) and is tried once more.
    pub(super) async fn verified_claims(
        &self,
        d: &Discovered,
        token: &ExtIdToken,
        nonce: &Nonce,
        access_token: &AccessToken,
    ) -> Result<ExtIdTokenClaims, ProviderError> {
        match self.verify_id_token(d, token, nonce, access_token) {
            Err(VerifyError::UnknownKey) => {
                // Key rotation: fetch the keys again (rate-limited) and try once more.
                if self.refresh_jwks().await? {
                    let d = self.discovered()?;
                    self.verify_id_token(&d, token, nonce, access_token)
                } else {
                    Err(VerifyError::UnknownKey)
                }
            }
            other => other,
        }
        .map_err(ProviderError::from)
    }

    /// Verify signature, iss, aud, exp, nonce (library) plus iat, azp, at_hash and the
    /// Microsoft tenant policy (ours).
    fn verify_id_token(
        &self,
        d: &Discovered,
        token: &ExtIdToken,
        nonce: &Nonce,
        access_token: &AccessToken,
    ) -> Result<ExtIdTokenClaims, VerifyError> {
        // The unverified claims only choose which issuer to verify against (Microsoft's
        // tenant); the kind's policy is applied again to the verified claims below.
        let unverified = token
            .claims(
                &IdTokenVerifier::<CoreJsonWebKey>::new_insecure_without_verification(),
                |_: Option<&Nonce>| Ok(()),
            )
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let discovered_issuer = d.metadata.issuer().as_str();
        let expected_issuer = self
            .quirks()
            .token_issuer(discovered_issuer, &unverified.additional_claims().0)
            .map_err(VerifyError::Refused)?;
        let client_id = ClientId::new(self.settings.client_id.clone());
        let mut verifier = IdTokenVerifier::new_confidential_client(
            client_id.clone(),
            ClientSecret::new(
                self.settings
                    .secret()
                    .map(|s| s.expose().to_string())
                    .unwrap_or_default(),
            ),
            issuer_url(&expected_issuer).map_err(|e| VerifyError::Invalid(e.to_string()))?,
            // Signatures checked by ring (see ring_jwk.rs); the verifier is the library's.
            super::ring_jwk::key_set(d.metadata.jwks()),
        )
        .set_issue_time_verifier_fn(|iat| check_issued_at(iat, Utc::now()));
        let advertised: Vec<CoreJwsSigningAlgorithm> = d
            .metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|a| !matches!(a, CoreJwsSigningAlgorithm::None))
            .cloned()
            .collect();
        if !advertised.is_empty() {
            verifier = verifier.set_allowed_algs(advertised);
        }
        let claims = token.claims(&verifier, nonce).map_err(|e| match e {
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => VerifyError::UnknownKey,
            other => VerifyError::Invalid(other.to_string()),
        })?;
        // azp: when present it must be us (the library leaves this to the client).
        if let Some(azp) = claims.authorized_party() {
            if azp != &client_id {
                return Err(VerifyError::Invalid("azp is not this client".into()));
            }
        }
        // at_hash: when present it must match the access token we were given.
        if let Some(expected) = claims.access_token_hash() {
            let alg = token
                .signing_alg()
                .map_err(|e| VerifyError::Invalid(e.to_string()))?;
            let key = token
                .signing_key(&verifier)
                .map_err(|e| VerifyError::Invalid(e.to_string()))?;
            let actual = AccessTokenHash::from_token(access_token, alg, key)
                .map_err(|e| VerifyError::Invalid(e.to_string()))?;
            if &actual != expected {
                return Err(VerifyError::Invalid(
                    "at_hash does not match the access token".into(),
                ));
            }
        }
        let verified_issuer = self
            .quirks()
            .token_issuer(discovered_issuer, &claims.additional_claims().0)
            .map_err(VerifyError::Refused)?;
        if verified_issuer != expected_issuer {
            return Err(VerifyError::Invalid("the token's issuer changed".into()));
        }
        Ok(claims.clone())
    }
}

enum VerifyError {
    UnknownKey,
    Invalid(String),
    /// The kind's issuer policy refused the token (Microsoft's tenants).
    Refused(ProviderError),
}

impl From<VerifyError> for ProviderError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::UnknownKey => {
                ProviderError::InvalidIdToken("signed with an unknown key".into())
            }
            VerifyError::Invalid(reason) => ProviderError::InvalidIdToken(reason),
            VerifyError::Refused(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_iat_is_accepted_and_a_future_one_beyond_the_leeway_refused() {
        let now = Utc::now();
        assert!(check_issued_at(now - ChronoDuration::hours(6), now).is_ok());
        assert!(check_issued_at(now + ChronoDuration::minutes(4), now).is_ok());
        let e = check_issued_at(now + ChronoDuration::minutes(6), now).unwrap_err();
        assert!(e.contains("in the future"), "{e}");
    }
}
