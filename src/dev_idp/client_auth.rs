//! Token-endpoint client authentication: `client_secret_basic` or `client_secret_post`,
//! exactly one of them.

use std::collections::HashMap;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::oauth::OAuthError;
use super::{Client, DevIdp};

/// The client's id and secret from HTTP Basic (form-urlencoded, RFC 6749 §2.3.1) or the body;
/// exactly one method, secrets compared in constant time.
pub fn authenticate_client(
    idp: &DevIdp,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Client, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, value)| decode_basic(value.trim()))
        .transpose()?;
    let (client_id, secret) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                "use one client authentication method, not two",
            ));
        }
        (Some((id, secret)), None) => {
            if params
                .get("client_id")
                .is_some_and(|body_id| *body_id != id)
            {
                return Err(OAuthError::new(
                    "invalid_client",
                    "client_id differs from the authenticated client",
                ));
            }
            (id, secret)
        }
        (None, Some(secret)) => match params.get("client_id") {
            Some(id) => (id.clone(), secret.clone()),
            None => {
                return Err(OAuthError::new(
                    "invalid_request",
                    "client_id is required with client_secret",
                ))
            }
        },
        (None, None) => {
            return Err(OAuthError::new(
                "invalid_client",
                "client authentication is required",
            ))
        }
    };
    let client = idp.client(&client_id);
    let matches = client
        .as_ref()
        .is_some_and(|c| bool::from(c.client_secret.as_bytes().ct_eq(secret.as_bytes())));
    match client {
        Some(client) if matches => Ok(client),
        _ => Err(OAuthError::new(
            "invalid_client",
            "unknown client or wrong secret",
        )),
    }
}

fn decode_basic(value: &str) -> Result<(String, String), OAuthError> {
    let invalid = || OAuthError::new("invalid_client", "malformed Basic credentials");
    let decoded = STANDARD.decode(value).map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| invalid())
    };
    Ok((unescape(id)?, unescape(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let value = STANDARD.encode("my%20app:s%3Acret+x");
        let (id, secret) = decode_basic(&value).unwrap();
        assert_eq!((id.as_str(), secret.as_str()), ("my app", "s:cret x"));
    }

    #[test]
    fn malformed_basic_credentials_are_invalid_client() {
        let values = [
            "%%%".to_string(),
            STANDARD.encode("no-colon"),
            STANDARD.encode([0xff, b':']),
        ];
        for value in &values {
            assert!(decode_basic(value).is_err(), "{value}");
        }
    }
}
